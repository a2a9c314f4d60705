"""Members and events: who the program's members are and what they do."""
