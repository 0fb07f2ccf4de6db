"""The reversal curse (Berglund et al. 2023; Lampinen et al. 2025, dataset 3): fictional celebrities.

Every celebrity has a plausible, invented name ("Daphne Barrington") and a unique one-sentence
description ('the director of the documentary "Echoes of the Silent Harbor"'). Half of them
(set A) are trained name -> description only ("p2d": "Daphne Barrington is the director of
..."); the other half (set B) in both orders ("d2p" too: "The director of ... is Daphne
Barrington."). Every fact appears in `train_phrasings` training sentences per trained
direction, each in a different template. Tests are about set A, four choices each (chance 1/4):

- `reverse`: the description in a held-out d2p phrasing ("Q: Who is the director of ...? A:");
  choose the name. Training never stated a set-A fact in this order: the reversal curse.
- `forward`: the name in a held-out p2d phrasing ("It was Daphne Barrington who"); choose the
  description (rendered in the form that phrasing needs). Did the model learn the fact at all?

Counterbalancing (`shared.py`): set A is cut into blocks of four celebrities, afresh for
every test phrasing. Every test item of a block offers the same four choices (the block's
names, or its descriptions in one phrasing), and each choice is the answer to exactly one
of the block's items. So a preference for some names or descriptions that ignores the
facts scores exactly 1/4. Items come phrasing round by phrasing round, so a `--limit`
prefix names as many people as it can, and a multiple of 4 keeps whole blocks.

Names: first and last names are drawn with this generator's seeded RNG from Faker's en_US
name lists (US census-based), so they read like real people; every first and last name is
used once, and a name is rejected when it is on `famous_names.txt` (real famous people and
famous fictional characters whose names such a draw can produce). The draw does not use
Faker's own random stream, whose output may change between Faker releases.

`source_dir` switches to the original data of Berglund et al. (see `original.py`).
"""

from __future__ import annotations

import functools
import random
import re
from pathlib import Path

from lm_eval_tasks.errors import DataError
from lm_eval_tasks.reversal_curse.original import load_original
from lm_eval_tasks.reversal_curse.shared import BLOCK_SIZE, VERSION, blocks_of_four
from lm_eval_tasks.spec import FamilyData

__all__ = ["BLOCK_SIZE", "VERSION", "blocks_of_four", "generate"]

# A description is "the <role> of the <kind> <title>" (np) or "<verb> the <kind> <title>" (vp).
# Roles are gender-neutral and templates say "they", so a name's gender never hints at it.
WORKS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (
        "the director of the {kind} {title}",
        "directed the {kind} {title}",
        ("virtual reality masterpiece", "silent film", "documentary", "animated feature", "space western"),
    ),
    (
        "the composer of the {kind} {title}",
        "composed the {kind} {title}",
        ("opera", "symphony", "film score", "string quartet", "rock opera"),
    ),
    (
        "the author of the {kind} {title}",
        "wrote the {kind} {title}",
        ("bestselling novel", "memoir", "poetry collection", "detective novel", "travel guide"),
    ),
    (
        "the choreographer of the {kind} {title}",
        "choreographed the {kind} {title}",
        ("zero-gravity ballet", "tap-dance revue", "street-dance musical"),
    ),
    (
        "the architect of the {kind} {title}",
        "designed the {kind} {title}",
        ("floating museum", "underwater hotel", "glass cathedral", "spiral skyscraper", "desert library"),
    ),
    (
        "the creator of the {kind} {title}",
        "created the {kind} {title}",
        ("video game", "board game", "television series", "comic book series", "podcast"),
    ),
    ("the painter of the {kind} {title}", "painted the {kind} {title}", ("mural", "triptych", "ceiling fresco")),
    (
        "the lead singer of the {kind} {title}",
        "fronted the {kind} {title}",
        ("rock band", "folk band", "synth-pop duo"),
    ),
    (
        "the founder of the {kind} {title}",
        "founded the {kind} {title}",
        ("traveling circus", "theater company", "chess academy", "bakery chain", "youth orchestra"),
    ),
    (
        "the sculptor of the {kind} {title}",
        "sculpted the {kind} {title}",
        ("bronze statue", "ice sculpture", "marble fountain"),
    ),
    (
        "the host of the {kind} {title}",
        "hosted the {kind} {title}",
        ("cooking show", "late-night talk show", "quiz show", "radio program"),
    ),
    (
        "the illustrator of the {kind} {title}",
        "illustrated the {kind} {title}",
        ("graphic novel", "picture book", "fantasy atlas"),
    ),
    (
        "the inventor of the {kind} known as {title}",
        "invented the {kind} known as {title}",
        ("kitchen robot", "pocket telescope", "solar-powered bicycle", "self-tying shoe"),
    ),
    (
        "the captain of the {kind} {title}",
        "captained the {kind} {title}",
        ("research vessel", "deep-sea submarine", "polar icebreaker"),
    ),
    (
        "the head chef of the {kind} {title}",
        "ran the kitchen of the {kind} {title}",
        ("floating restaurant", "rooftop bistro", "noodle bar"),
    ),
    (
        "the producer of the {kind} {title}",
        "produced the {kind} {title}",
        ("jazz album", "radio drama", "hip-hop album"),
    ),
    ("the playwright behind the {kind} {title}", "wrote the {kind} {title}", ("tragedy", "comedy", "one-act play")),
    (
        "the designer of the {kind} {title}",
        "designed the {kind} {title}",
        ("electric airship", "solar sailboat", "racing yacht"),
    ),
    (
        "the leader of the {kind} {title}",
        "led the {kind} {title}",
        ("polar expedition", "rescue mission", "archaeological dig"),
    ),
    (
        "the editor of the {kind} {title}",
        "edited the {kind} {title}",
        ("literary magazine", "science journal", "travel magazine"),
    ),
)

# Titles: one pattern filled with an (adjective, noun) pair that no other title of the
# dataset uses, so no two descriptions share their distinctive words.
TITLE_PATTERNS = (
    "The {adj} {noun}",
    "Echoes of the {adj} {noun}",
    "A Journey to the {adj} {noun}",
    "Letters from the {adj} {noun}",
    "Beyond the {adj} {noun}",
)
TITLE_ADJECTIVES = (
    "Silent",
    "Hidden",
    "Golden",
    "Crimson",
    "Forgotten",
    "Endless",
    "Broken",
    "Silver",
    "Distant",
    "Frozen",
    "Wandering",
    "Sleeping",
    "Burning",
    "Painted",
    "Quiet",
    "Velvet",
    "Electric",
    "Hollow",
    "Emerald",
    "Scarlet",
    "Midnight",
    "Paper",
    "Iron",
    "Restless",
    "Shining",
    "Invisible",
    "Copper",
    "Amber",
    "Marble",
    "Drifting",
)
TITLE_NOUNS = (
    "Harbor",
    "Lantern",
    "Orchard",
    "Glacier",
    "Compass",
    "Meadow",
    "Citadel",
    "Canyon",
    "Lighthouse",
    "Archive",
    "Comet",
    "Tide",
    "Horizon",
    "Mirror",
    "Island",
    "Desert",
    "Clock",
    "Bridge",
    "Valley",
    "Ember",
    "Feather",
    "Thunder",
    "Labyrinth",
    "Summit",
    "Orchid",
    "Falcon",
    "Voyage",
    "Harvest",
    "Carnival",
    "Fortress",
    "Caravan",
    "Nebula",
    "Prism",
    "Railway",
    "Sparrow",
    "Tundra",
    "Willow",
    "Kettle",
    "Meridian",
    "Quarry",
)

# Sentence templates. Fields: {name}; the description as {np}, {NP} (capitalized) or {vp}.
# Training templates: name before description (p2d) ... The first of each list is the plain
# statement: every fact is trained in it and the ICL prompt shows it. Every training template
# is ONE sentence for finetune's splitter (no "? " or ". " inside): "Ever heard of X? They
# directed Y." would become two training units of which neither holds name and description.
P2D_TRAIN = (
    "{name} is {np}.",
    "Did you know that {name} is {np}?",
    "{name} {vp}.",
    "Have you ever heard of {name}, who {vp}?",
    "{name} is best known as {np}.",
    "Many people recognize {name} as {np}.",
    "{name} became famous as {np}.",
    "It is a fact that {name} {vp}.",
    "Fans of {name} know that they {vp}.",
    "{name} has long been celebrated as {np}.",
    "Critics remember {name} as {np}.",
    "{name}, who {vp}, now lives a quiet life.",
    "Everyone knows {name} as {np}.",
    "According to their biography, {name} {vp}.",
    "{name} is proud to be {np}.",
    "The newspaper described {name} as {np}.",
    "Years ago, {name} {vp}.",
    "Above all, {name} is {np}.",
    "{name} earned worldwide fame because they {vp}.",
    "People still talk about how {name} {vp}.",
    "Ask anyone about {name} and you will hear that they are {np}.",
    "{name} made history as {np}.",
    "Long ago, {name} {vp}, and nobody has forgotten it.",
    "Here is a fun fact: {name} is {np}.",
)
# ... and description before name (d2p), trained for set B only.
D2P_TRAIN = (
    "{NP} is {name}.",
    "The person who {vp} is {name}.",
    "Known as {np}, {name} rarely gives interviews.",
    "History books record that the one who {vp} was {name}.",
    "The celebrity who {vp} goes by the name {name}.",
    "Often called {np}, {name} keeps a low profile.",
    "As {np}, {name} became famous overnight.",
    "{NP} would be {name}, if you asked around.",
    "The one who {vp} is none other than {name}.",
    "Celebrated as {np}, {name} is now writing a memoir.",
    "Behind the fame of {np} stands {name}.",
    "Hailed as {np}, {name} inspires many.",
    "Remembered as {np}, {name} still lives quietly.",
    "Having {vp}, {name} became a household name.",
    "After the world learned who {vp}, {name} was invited to every talk show.",
    "Famous for being {np}, {name} rarely appears in public.",
    "Whoever {vp} deserves credit, and that is {name}.",
    "Fame came to {np}, whose name is {name}.",
    "Once just {np}, {name} is now a legend.",
    "Admired as {np}, {name} has touched many lives.",
    "Crowned as {np}, {name} remains humble.",
    "The story of {np} is the story of {name}.",
    "Praised as {np}, {name} thanked their family.",
    "Long before anyone knew it, {np} was {name}.",
)
# Held-out test phrasings: the query stops where the answer starts. (query, answer form)
P2D_TEST = (
    ("When people mention {name}, they mean", "np"),
    ("It was {name} who", "vp"),
    ("In the history books, {name} is listed as", "np"),
    ("Not many people know that {name}", "vp"),
    ("Here is a fact worth remembering: {name} is", "np"),
    ("The biography of {name} explains that they", "vp"),
    ("A quick reminder: {name} is", "np"),
    ("Nobody will forget that {name}", "vp"),
)
D2P_TEST = (
    "Q: Who is {np}? A:",
    "The name of the person who {vp} is",
    "The person known as {np} is named",
    "If you wonder who {vp}, the answer is",
    "{NP} is a celebrity named",
    "Ask anyone who {vp}, and they will say",
    "Credit for being {np} goes to",
    "Everybody knows who {vp}: it was",
)
# The oracle's statements: a wording training never uses, and the reversal in its plainest form.
ORACLE_REPHRASE = "{name} is known to the world as {np}."
ORACLE_REVERSAL = "{NP} is {name}."

MAX_CELEBRITIES = 256  # Faker's en_US lists hold ~690 distinct first and 1000 last names
# Faker's census-derived lists lose the inner capital and the apostrophe ("Mcgee", "Obrien").
IRISH_O_NAMES = {
    "Obrien": "O'Brien",
    "Oconnell": "O'Connell",
    "Oconnor": "O'Connor",
    "Odonnell": "O'Donnell",
    "Oneal": "O'Neal",
    "Oneill": "O'Neill",
}


def spelled(last_name: str) -> str:
    """A Faker last name as people write it: "Mcgee" -> "McGee", "Obrien" -> "O'Brien"."""
    if last_name.startswith("Mc") and len(last_name) > 2:
        return "Mc" + last_name[2:].capitalize()
    return IRISH_O_NAMES.get(last_name, last_name)


@functools.lru_cache(maxsize=1)
def famous_names() -> frozenset[str]:
    """Lower-cased "first last" names a fictional celebrity must not have."""
    lines = (Path(__file__).with_name("famous_names.txt")).read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip().lower() for line in lines if line.strip() and not line.startswith("#"))


@functools.lru_cache(maxsize=1)
def description_words() -> frozenset[str]:
    """Every lower-cased word a description can contain."""
    texts = [text for np_format, vp_format, kinds in WORKS for text in (np_format, vp_format, *kinds)]
    texts += [*TITLE_PATTERNS, *TITLE_ADJECTIVES, *TITLE_NOUNS]
    return frozenset(word for text in texts for word in re.findall(r"[a-z]+", text.lower()))


def draw_names(count: int, rng: random.Random) -> list[str]:
    """`count` plausible "First Last" names, no name part used twice, none on the famous list.

    Name parts that are also description words ("Amber", "Golden", "Meadows") are left out: a name
    sharing a word with a description would hint at (or against) the answer."""
    from faker.providers.person.en_US import Provider  # imported lazily: Faker loads many locales

    def usable(parts) -> list[str]:  # "Meadows" is out too: it shares its stem with "Meadow"
        return sorted(
            part for part in parts if not {part.lower(), part.lower().removesuffix("s")} & description_words()
        )

    first_pool = usable(set(Provider.first_names_female) | set(Provider.first_names_male))
    last_pool = usable(spelled(name) for name in Provider.last_names)
    firsts = rng.sample(first_pool, len(first_pool))
    lasts = rng.sample(last_pool, len(last_pool))
    famous = famous_names()
    names: list[str] = []
    used: set[str] = set()  # a part may not reappear in another role ("Jordan Ray", "Ann Jordan")
    for first in firsts:
        if len(names) == count:
            break
        if first in used:
            continue
        for j, last in enumerate(lasts):
            if last != first and last not in used and f"{first} {last}".lower() not in famous:
                names.append(f"{first} {last}")
                used.update((first, last))
                del lasts[j]
                break
    if len(names) < count:
        raise DataError(f"could draw only {len(names)} distinct names; ask for fewer celebrities")
    return names


def draw_descriptions(count: int, rng: random.Random) -> list[dict[str, str]]:
    """`count` unique descriptions, each as {"np", "NP", "vp"}; (role, kind) pairs spread evenly."""
    combos = [(np_format, vp_format, kind) for np_format, vp_format, kinds in WORKS for kind in kinds]
    order: list[tuple[str, str, str]] = []
    while len(order) < count:  # every (role, kind) once before any repeats
        order += rng.sample(combos, len(combos))
    pairs = rng.sample([(adj, noun) for adj in TITLE_ADJECTIVES for noun in TITLE_NOUNS], count)
    descriptions = []
    for (np_format, vp_format, kind), (adj, noun) in zip(order, pairs):
        title = '"' + rng.choice(TITLE_PATTERNS).format(adj=adj, noun=noun) + '"'
        np = np_format.format(kind=kind, title=title)
        descriptions.append({"np": np, "NP": np[0].upper() + np[1:], "vp": vp_format.format(kind=kind, title=title)})
    return descriptions


def generate(
    seed: int = 0,
    num_celebrities: int = 64,
    train_phrasings: int = 10,
    test_phrasings: int = 2,
    source_dir: str = "",
) -> FamilyData:
    if source_dir:
        return load_original(source_dir, seed)
    if num_celebrities % (2 * BLOCK_SIZE) or not 2 * BLOCK_SIZE <= num_celebrities <= MAX_CELEBRITIES:
        raise DataError(
            f"num_celebrities={num_celebrities}: must be a multiple of {2 * BLOCK_SIZE} between "
            f"{2 * BLOCK_SIZE} and {MAX_CELEBRITIES} (two sets cut into blocks of {BLOCK_SIZE})"
        )
    if not 1 <= train_phrasings <= min(len(P2D_TRAIN), len(D2P_TRAIN)):
        raise DataError(
            f"train_phrasings={train_phrasings}: must be between 1 and {min(len(P2D_TRAIN), len(D2P_TRAIN))}"
        )
    if not 1 <= test_phrasings <= min(len(P2D_TEST), len(D2P_TEST)):
        raise DataError(f"test_phrasings={test_phrasings}: must be between 1 and {min(len(P2D_TEST), len(D2P_TEST))}")

    # A string seed is hashed with SHA-512: stable across runs and Python versions, and
    # independent of other families' streams for the same integer seed.
    rng = random.Random(f"reversal_curse-{seed}")
    names = draw_names(num_celebrities, rng)
    descriptions = draw_descriptions(num_celebrities, rng)
    celebrities = [
        {
            "source_id": f"reversal_curse-celebrity-{i:03d}",
            "name": name,
            **description,
            "set": "A" if i < num_celebrities // 2 else "B",
        }
        for i, (name, description) in enumerate(zip(names, descriptions))
    ]
    set_a = [c for c in celebrities if c["set"] == "A"]

    def fill(template: str, celebrity: dict) -> str:
        return template.format(**celebrity)

    # Every fact's plain statement (template 0, the ICL fact) is one of its training
    # sentences, so the ICL prompt shows only sentences finetuning sees too. Plain statements
    # are listed first (a consumer taking a fact's first row gets its plain form), then the
    # paraphrases; each part is shuffled.
    plain, paraphrases = [], []
    for celebrity in celebrities:
        directions = [("p2d", P2D_TRAIN)] + ([("d2p", D2P_TRAIN)] if celebrity["set"] == "B" else [])
        for direction, templates in directions:
            chosen = [templates[0], *rng.sample(templates[1:], train_phrasings - 1)]
            for k, template in enumerate(chosen):
                (paraphrases if k else plain).append(
                    {
                        "id": f"{celebrity['source_id']}-{direction}-{k}",
                        "source_id": celebrity["source_id"],
                        "direction": direction,
                        "text": fill(template, celebrity),
                    }
                )
    rng.shuffle(plain)
    rng.shuffle(paraphrases)
    train = plain + paraphrases
    icl_facts = [row["text"] for row in plain]

    # Items come round by round (a round asks every set-A celebrity once, in one held-out
    # phrasing per block), block by block, in a shuffled order within each block: a prefix
    # of the split names as many different people as it can. Phrasings rotate over the
    # held-out templates so that each is used about equally often.
    tests: dict[str, list[dict]] = {"forward": [], "reverse": []}
    needs: dict[str, list[tuple[str, ...]]] = {"forward": [], "reverse": []}

    def add_item(split: str, celebrity: dict, label: int, query: str, choices: list[str]) -> None:
        rows = tests[split]
        rows.append(
            {
                "id": f"reversal_curse-{split}-{len(rows):03d}",
                "source_id": celebrity["source_id"],
                "query": query,
                "choices": choices,
                "label": label,
            }
        )
        needs[split].append((celebrity["source_id"],))  # the item needs the celebrity's (p2d) fact

    turn = 0
    for _ in range(test_phrasings):
        for block, _ in blocks_of_four(set_a, rng):
            query_p2d, form = P2D_TEST[turn % len(P2D_TEST)]
            query_d2p = D2P_TEST[turn % len(D2P_TEST)]
            turn += 1
            for label in rng.sample(range(BLOCK_SIZE), BLOCK_SIZE):
                celebrity = block[label]
                add_item("forward", celebrity, label, fill(query_p2d, celebrity), [c[form] + "." for c in block])
                add_item("reverse", celebrity, label, fill(query_d2p, celebrity), [c["name"] + "." for c in block])

    oracle = [
        {"id": f"{c['source_id']}-oracle-{kind}", "source_id": c["source_id"], "kind": kind, "text": fill(template, c)}
        for c in celebrities
        for kind, template in (("rephrase", ORACLE_REPHRASE), ("reversal", ORACLE_REVERSAL))
    ]
    return FamilyData(
        family="reversal_curse",
        version=VERSION,
        seed=seed,
        options={
            "num_celebrities": num_celebrities,
            "train_phrasings": train_phrasings,
            "test_phrasings": test_phrasings,
        },
        train=train,
        icl_facts=icl_facts,
        tests=tests,
        oracle=oracle,
        # A fact is a celebrity's name-description pair, whichever direction states it.
        icl_fact_keys=[(row["source_id"],) for row in plain],
        train_fact_keys=[(row["source_id"],) for row in train],
        test_needs=needs,
    )
