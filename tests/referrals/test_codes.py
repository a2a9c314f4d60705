"""Codes and click ids: readable, and never repeated, in one process or across a fork."""

from __future__ import annotations

import os
import threading

import pytest

from budding.referrals import codes
from budding.referrals.codes import ALPHABET, new_code, new_token, normalise_code, seeded_codes


def test_codes_use_the_alphabet_and_read_back() -> None:
    code = new_code()
    assert len(code) == 12 and set(code) <= set(ALPHABET)
    assert normalise_code(code.lower()) == code


def test_click_ids_do_not_repeat_across_many_pool_refills() -> None:
    # 20,000 ids of 17 bytes each span about 80 refills of the 4 KB pool.
    ids = {new_token() for _ in range(20_000)}
    assert len(ids) == 20_000


def test_threads_draw_different_bytes() -> None:
    found: list[set[str]] = [set(), set()]

    def draw(out: set[str]) -> None:
        out.update(new_token() for _ in range(2_000))

    threads = [threading.Thread(target=draw, args=(found[i],)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(found[0]) == len(found[1]) == 2_000
    assert not found[0] & found[1]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_does_not_reuse_the_parents_buffered_bytes() -> None:
    new_token()  # the parent now holds a partly used pool
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child's lines run in another process
        os.close(read_end)
        os.write(write_end, new_token().encode())
        os._exit(0)
    os.close(write_end)
    child_token = os.read(read_end, 64).decode()
    os.close(read_end)
    os.waitpid(pid, 0)
    assert len(child_token) == 26
    assert child_token != new_token()


def test_seeded_codes_are_reproducible_and_leave_the_pool_alone() -> None:
    with seeded_codes("demo"):
        first = [new_code() for _ in range(3)]
    with seeded_codes("demo"):
        assert [new_code() for _ in range(3)] == first
    assert new_code() not in first


def test_the_pool_reads_the_os_in_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[int] = []
    real = codes.secrets.token_bytes

    def counting(size: int) -> bytes:
        reads.append(size)
        return real(size)

    monkeypatch.setattr(codes.secrets, "token_bytes", counting)
    monkeypatch.setattr(codes, "_pool", codes._EntropyPool())
    for _ in range(1_000):
        new_token()
    assert 1 <= len(reads) <= 1_000 * 17 // codes.POOL_BYTES + 1
