"""Names, places, currencies and channels that fit each of the five locales.

Every name comes with a romanised form for e-mail addresses, so a Korean or
Chinese member gets ``minjun.kim@…`` rather than an address the demo made up
from nothing. The lists are short on purpose: a demo needs believable
variety, not a census.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import numpy as np


def _latin(names: str) -> tuple[tuple[str, str], ...]:
    """Latin-script names from a space-separated list, each with its e-mail stem."""
    return tuple((n, n.lower()) for n in names.split())


LOCALE_SHARES: dict[str, float] = {
    "en": 0.30,
    "ko": 0.20,
    "es": 0.20,
    "id": 0.15,
    "zh_Hans": 0.15,
}


@dataclass(frozen=True)
class LocaleData:
    """What a member of one locale is called, where they live and how they pay and share."""

    given: tuple[tuple[str, str], ...]  # (native, romanised)
    family: tuple[tuple[str, str], ...]
    cities: tuple[str, ...]
    currency: str
    price: float  # median order value in ``currency``
    decimals: int
    share_channels: tuple[tuple[str, float], ...]  # (channel, weight)
    post_titles: tuple[str, ...]
    family_first: bool = False  # 김민준, 王伟
    joined: bool = False  # no space between family and given name
    mononym_share: float = 0.0  # many Indonesians use one name


LOCALES: dict[str, LocaleData] = {
    "en": LocaleData(
        given=_latin(
            "James Olivia Liam Emma Noah Ava Oliver Sophia Elijah Mia Lucas Amelia Mason "
            "Harper Ethan Evelyn Aiden Abigail Jack Emily Henry Ella Leo Grace Priya Arjun "
            "Aisha Kwame Chloe Daniel"
        ),
        family=_latin(
            "Smith Johnson Williams Brown Jones Miller Davis Wilson Anderson Taylor Thomas "
            "Moore Martin Jackson Thompson White Harris Clark Lewis Walker Hall Young Patel "
            "Nguyen O'Brien Murphy Campbell Okafor"
        ),
        cities=("New York", "London", "Toronto", "Sydney", "Austin", "Manchester", "Auckland"),
        currency="USD",
        price=24.0,
        decimals=2,
        share_channels=(
            ("email", 3),
            ("x", 2),
            ("facebook", 2),
            ("whatsapp", 2),
            ("telegram", 1),
        ),
        post_titles=(
            "My first pour-over at home",
            "Which grinder do you use?",
            "The new seasonal blend is great",
            "Tips for cold brew in summer",
            "Latte art attempt #12",
            "Is the subscription worth it?",
        ),
    ),
    "ko": LocaleData(
        given=(
            ("민준", "minjun"),
            ("서연", "seoyeon"),
            ("도윤", "doyoon"),
            ("지우", "jiwoo"),
            ("하은", "haeun"),
            ("예준", "yejun"),
            ("서준", "seojun"),
            ("지민", "jimin"),
            ("수아", "sua"),
            ("하준", "hajun"),
            ("지호", "jiho"),
            ("유진", "yujin"),
            ("현우", "hyunwoo"),
            ("채원", "chaewon"),
            ("지훈", "jihoon"),
            ("민서", "minseo"),
            ("은우", "eunwoo"),
            ("다은", "daeun"),
            ("건우", "gunwoo"),
            ("소율", "soyul"),
            ("우진", "woojin"),
            ("예린", "yerin"),
            ("태윤", "taeyoon"),
            ("나은", "naeun"),
        ),
        family=(
            ("김", "kim"),
            ("이", "lee"),
            ("박", "park"),
            ("최", "choi"),
            ("정", "jung"),
            ("강", "kang"),
            ("조", "cho"),
            ("윤", "yoon"),
            ("장", "jang"),
            ("임", "lim"),
            ("한", "han"),
            ("오", "oh"),
            ("서", "seo"),
            ("신", "shin"),
            ("권", "kwon"),
            ("황", "hwang"),
            ("안", "ahn"),
            ("송", "song"),
            ("류", "ryu"),
            ("홍", "hong"),
        ),
        cities=("서울", "부산", "인천", "대구", "대전", "광주", "수원"),
        currency="KRW",
        price=28000.0,
        decimals=-2,
        share_channels=(("kakaotalk", 8), ("line", 1), ("email", 1)),
        post_titles=(
            "집에서 핸드드립 처음 해봤어요",
            "그라인더 추천해 주세요",
            "이번 시즌 블렌드 정말 맛있네요",
            "여름엔 콜드브루죠",
            "라떼아트 연습 12일째",
            "정기구독 할 만한가요?",
        ),
        family_first=True,
        joined=True,
    ),
    "es": LocaleData(
        given=_latin(
            "María José Lucía Juan Sofía Carlos Valentina Diego Camila Miguel Isabella "
            "Alejandro Daniela Javier Gabriela Luis Mariana Andrés Fernanda Sebastián Paula "
            "Mateo Ximena Santiago"
        ),
        family=_latin(
            "García Rodríguez Martínez Hernández López González Pérez Sánchez Ramírez "
            "Torres Flores Rivera Gómez Díaz Morales Reyes Cruz Ortiz Gutiérrez Chávez"
        ),
        cities=(
            "Ciudad de México",
            "Bogotá",
            "Buenos Aires",
            "Lima",
            "Santiago",
            "Guadalajara",
            "Medellín",
        ),
        currency="MXN",
        price=420.0,
        decimals=0,
        share_channels=(("whatsapp", 7), ("facebook", 2), ("telegram", 1), ("email", 1)),
        post_titles=(
            "Mi primer café de filtro en casa",
            "¿Qué molino recomiendan?",
            "La mezcla de temporada está buenísima",
            "Cold brew para el verano",
            "Intento de latte art número 12",
            "¿Vale la pena la suscripción?",
        ),
    ),
    "id": LocaleData(
        given=_latin(
            "Budi Siti Agus Dewi Putri Rizky Andi Sri Ahmad Ayu Dimas Indah Fajar Nur Eko "
            "Rina Yusuf Wulan Bayu Intan Hendra Lestari Teguh Ratna"
        ),
        family=_latin(
            "Santoso Wijaya Saputra Pratama Hidayat Kusuma Setiawan Nugroho Rahmawati Sari "
            "Susanto Gunawan Siregar Nasution Hutapea Wibowo Purnomo Halim Utami Permana"
        ),
        cities=("Jakarta", "Surabaya", "Bandung", "Medan", "Yogyakarta", "Semarang", "Makassar"),
        currency="IDR",
        price=185000.0,
        decimals=-3,
        share_channels=(("whatsapp", 7), ("line", 1), ("telegram", 2), ("facebook", 1)),
        post_titles=(
            "Pertama kali seduh V60 di rumah",
            "Rekomendasi grinder dong",
            "Blend musim ini enak banget",
            "Cold brew buat cuaca panas",
            "Latihan latte art hari ke-12",
            "Langganan bulanan worth it nggak?",
        ),
        mononym_share=0.25,
    ),
    "zh_Hans": LocaleData(
        given=(
            ("伟", "wei"),
            ("芳", "fang"),
            ("娜", "na"),
            ("敏", "min"),
            ("静", "jing"),
            ("磊", "lei"),
            ("洋", "yang"),
            ("艳", "yan"),
            ("勇", "yong"),
            ("杰", "jie"),
            ("涛", "tao"),
            ("明", "ming"),
            ("超", "chao"),
            ("秀英", "xiuying"),
            ("丽", "li"),
            ("强", "qiang"),
            ("婷", "ting"),
            ("子涵", "zihan"),
            ("浩然", "haoran"),
            ("欣怡", "xinyi"),
            ("宇轩", "yuxuan"),
            ("梓萱", "zixuan"),
            ("俊杰", "junjie"),
            ("雨桐", "yutong"),
        ),
        family=(
            ("王", "wang"),
            ("李", "li"),
            ("张", "zhang"),
            ("刘", "liu"),
            ("陈", "chen"),
            ("杨", "yang"),
            ("黄", "huang"),
            ("赵", "zhao"),
            ("吴", "wu"),
            ("周", "zhou"),
            ("徐", "xu"),
            ("孙", "sun"),
            ("马", "ma"),
            ("朱", "zhu"),
            ("胡", "hu"),
            ("郭", "guo"),
            ("何", "he"),
            ("林", "lin"),
            ("罗", "luo"),
            ("高", "gao"),
        ),
        cities=("上海", "北京", "深圳", "杭州", "成都", "广州", "武汉"),
        currency="CNY",
        price=168.0,
        decimals=0,
        share_channels=(("wechat", 8), ("weibo", 2), ("qq", 2)),
        post_titles=(
            "第一次在家做手冲",
            "大家用什么磨豆机？",
            "这一季的拼配豆太好喝了",
            "夏天就要喝冷萃",
            "拉花练习第12天",
            "订阅值得吗？",
        ),
        family_first=True,
        joined=True,
    ),
}

MARKETING_CHANNELS: tuple[tuple[str, float], ...] = (
    ("search", 4),
    ("ads", 3),
    ("newsletter", 1),
    ("event", 1),
    ("app_store", 2),
    ("organic", 3),
)
EMAIL_DOMAINS = ("example.com", "example.org", "example.net")


def ascii_fold(text: str) -> str:
    """``Sebastián`` -> ``sebastian``: accents dropped for the local part of an address."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(c for c in folded.lower() if c.isalnum())


def pick(rng: np.random.Generator, options: tuple[tuple[str, float], ...]) -> str:
    """One option drawn with its weight."""
    weights = np.array([w for _, w in options], dtype=float)
    return options[int(rng.choice(len(options), p=weights / weights.sum()))][0]


def person_name(rng: np.random.Generator, locale: str) -> tuple[str, str]:
    """A display name that fits ``locale`` and its romanised stem for an e-mail address."""
    data = LOCALES[locale]
    given, given_rom = data.given[int(rng.integers(len(data.given)))]
    family, family_rom = data.family[int(rng.integers(len(data.family)))]
    if data.mononym_share and rng.random() < data.mononym_share:
        return given, ascii_fold(given_rom)
    if locale == "es" and rng.random() < 0.5:  # two surnames, as on a Latin American ID card
        second, second_rom = data.family[int(rng.integers(len(data.family)))]
        if second != family:
            family, family_rom = f"{family} {second}", f"{family_rom}{second_rom}"
    if data.family_first:
        name = f"{family}{given}" if data.joined else f"{family} {given}"
    else:
        name = f"{given} {family}"
    return name, f"{ascii_fold(given_rom)}.{ascii_fold(family_rom)}"
