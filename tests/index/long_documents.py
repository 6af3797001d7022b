"""A corpus of long documents written for the tests: twenty reports of 600 to 3,000 words about
fictional lighthouses, orchards, observatories, railways and libraries, each holding one fact
found nowhere else, in its last quarter, and a question about that fact.

Documents of one kind share their opening and most of their paragraphs (as reports written to
one template do), so the first 180 tokens cannot tell them apart: only an index that reads the
whole document finds the answer. The questions do not name the place.
"""

from __future__ import annotations

# Paragraphs any of the reports may hold.
GENERAL = [
    "The annual accounts were prepared by the treasurer and approved at the spring meeting. Most of "
    "the income came from membership fees, a small grant from the county council and the sale of "
    "postcards, while the largest expense remained insurance, which has risen every year since the "
    "regulations were revised. The committee agreed to keep a reserve equal to one year of running "
    "costs and to review the fees again once the repairs are complete.",
    "Volunteers continue to do most of the daily work. A rota drawn up each month lists who opens "
    "the building, who answers letters and who shows visitors around on weekends. New volunteers "
    "spend their first afternoons with someone experienced, and a short handbook explains where the "
    "keys are kept, how to record a visit and what to do if the alarm sounds.",
    "The weather this year was mixed. A dry spring was followed by a wet and windy summer, and the "
    "autumn storms brought down several trees along the lane. The gutters were cleared twice, the "
    "drains were rodded out after a blockage in October, and the path was resurfaced with gravel so "
    "that it no longer turns to mud in the winter months.",
    "Visitor numbers rose slightly compared with the previous season. School groups came on weekday "
    "mornings, walkers and cyclists stopped in the afternoons, and the open day in September drew "
    "the largest crowd so far. Comments in the visitors' book were mostly kind, although several "
    "people asked for better signs from the main road and a place to sit out of the rain.",
    "Maintenance followed the usual pattern. The roof was inspected after the winter, loose slates "
    "were replaced, and the woodwork on the south side was sanded and painted. The electrical "
    "installation passed its five-yearly test with only minor remarks, and the fire extinguishers "
    "were serviced by the same firm that has looked after them for many years.",
    "The archive of letters, photographs and account books kept by the society grew again. A "
    "retired teacher has begun to catalogue the photographs, writing down who and what they show "
    "while people who remember the scenes are still able to help. Copies of the most fragile items "
    "have been made so that the originals need not be handled by researchers.",
    "Transport to the site remains a concern. The bus runs only twice a day outside the summer "
    "months, and the nearest station is more than an hour's walk away. The committee wrote to the "
    "transport authority asking for an extra service on weekends, and a local taxi firm now offers "
    "a reduced fare to visitors who show a ticket from the site.",
    "Relations with the neighbours are good. The farmer whose land surrounds the site allows cars "
    "to park in his field on busy days, the village shop sells the society's guidebook, and the "
    "parish newsletter prints a short report every quarter. In return the society lends its hall "
    "for village events and keeps the footpath across the common clear of brambles.",
    "Health and safety procedures were reviewed by an adviser from the county. The report asked "
    "for handrails on two staircases, clearer marking of the steps at the entrance and a written "
    "plan for evacuating visitors. All of these have now been carried out, and the staff attended "
    "a first aid course held in the village hall over two evenings in November.",
    "Looking ahead, the committee hopes to raise money for a small exhibition room, to record the "
    "memories of older members before they are lost, and to put the catalogue online so that "
    "researchers can search it from home. A sub-committee will report on the cost of each of these "
    "plans at the next general meeting.",
    "The society thanks everyone who gave time, money or objects during the year. Particular thanks "
    "go to the family who donated a collection of papers found in their attic, to the students who "
    "helped with the cataloguing during their holidays, and to the local newspaper for its steady "
    "interest in the society's work.",
    "Membership stood at just over two hundred at the end of the year. Most members live within ten "
    "miles, but a growing number join from further away after visiting on holiday. The newsletter "
    "is now sent by email to those who prefer it, which has reduced the cost of postage by nearly a "
    "third and allowed more pages of photographs in each issue.",
]

# Paragraphs of one kind of report, and the opening every report of that kind shares.
KINDS = {
    "lighthouse": (
        "This report describes the history and present state of {name}, a lighthouse on the western "
        "coast, and the work of the trust that has cared for it since the light was automated. The "
        "tower, the keepers' cottages and the walled yard around them are open to visitors in the "
        "summer, and the trust's members meet there each spring to review the year.",
        [
            "The tower is built of granite blocks quarried on the island, each dressed by hand and "
            "fitted without mortar in the lower courses. A spiral stair of one hundred and twelve "
            "steps leads to the lantern room, where the lens still turns on its bath of mercury, "
            "although the light itself is now switched on and off by a timer.",
            "The keepers kept a log in which they recorded the weather, passing ships and every "
            "change of the watch. The log books from the last eighty years survive and are kept in "
            "the cottage, where visitors may read the entries made on the nights of great storms "
            "and of the ships that sheltered in the bay.",
            "Supplies reached the station by boat until a road was built across the causeway. Coal, "
            "oil, food and water were landed at the jetty and carried up to the stores, and in bad "
            "weather the keepers could be cut off for weeks with only the signal flags to tell the "
            "mainland that all was well.",
        ],
    ),
    "orchard": (
        "This report describes {name}, an old orchard of apple and pear trees on the edge of the "
        "village, and the work of the community group that bought it when the farm was sold. The "
        "orchard is open to the public every day, and members gather in the barn each autumn to "
        "press the fruit and review the year.",
        [
            "The orchard holds some three hundred trees of more than forty varieties, many of them "
            "local kinds that are no longer sold by nurseries. The oldest trees were planted before "
            "the first war and are now hollow, but they still fruit well, and young trees grafted "
            "from them are planted in the gaps each winter.",
            "Pruning is done between November and February by volunteers trained by a retired "
            "fruit grower. Dead and crossing branches are removed, the centres of the trees are "
            "opened to the light, and the prunings are stacked in heaps at the edge of the orchard "
            "as shelter for hedgehogs and insects.",
            "The grass beneath the trees is cut once a year in late summer, after the wild flowers "
            "have set seed. Sheep from a neighbouring farm graze the orchard in the winter months, "
            "which keeps the grass short and adds manure, but they are moved out before the "
            "blossom opens in the spring.",
        ],
    ),
    "observatory": (
        "This report describes {name}, a small astronomical observatory on the hill above the town, "
        "and the work of the astronomical society that has run it since the university gave it up. "
        "The dome and the lecture room are open to the public on clear evenings in the winter, and "
        "members meet there each month to plan observations and review the year.",
        [
            "The main instrument is a reflecting telescope on an equatorial mount, housed in a dome "
            "that turns on iron wheels running in a circular track. A slit in the dome opens with "
            "a pair of shutters, and the whole building was designed so that warm air from the "
            "lecture room would not rise in front of the telescope.",
            "Members observe variable stars, the moon and the planets, and send their measurements "
            "to national associations that collect observations from amateurs across the country. "
            "A programme of timing the occultations of stars by the moon has been running without "
            "a break for more than thirty years.",
            "Light from the growing town has made faint objects harder to see, and the society has "
            "worked with the council to fit street lamps that shine downwards. On the darkest "
            "nights the Milky Way can still be seen from the hill, and a dark sky walk is held "
            "each February for families from the town.",
        ],
    ),
    "railway": (
        "This report describes {name}, a railway line that once linked the market town with the "
        "villages of the valley, and the work of the heritage society that looks after what "
        "remains of it. The old station house serves as the society's museum, and members meet "
        "there each month to plan work parties and review the year.",
        [
            "The line was built by a private company and opened with a brass band and a holiday for "
            "the schools. Trains carried milk, coal and timber as well as passengers, and for many "
            "years the morning train was known as the school train because so many children "
            "travelled on it to the grammar school in town.",
            "The station buildings were built of local stone with timber canopies over the "
            "platforms. The goods shed, the signal box and the water tower survive, and the society "
            "has restored the signal box so that visitors can pull the levers and see how the "
            "points and signals were worked.",
            "Much of the trackbed is now a footpath and cycle way, and the society has put up "
            "boards along it that tell the story of each bridge, cutting and halt. Walkers can "
            "still find the old mileposts in the hedges and the concrete bases of the platelayers' "
            "huts along the way.",
        ],
    ),
    "library": (
        "This report describes {name}, a subscription library founded in the town more than two "
        "centuries ago, and the work of the trustees who keep it open. The reading room and the "
        "book stacks are open to members every weekday and to visitors by appointment, and the "
        "trustees meet there each quarter to review the year.",
        [
            "The collection holds some forty thousand volumes, from early printed books to recent "
            "novels, with strong sections on local history, travel and natural history. Members "
            "may borrow up to six books at a time, and a volunteer delivers books each week to "
            "members who can no longer climb the stairs.",
            "The reading room is lit by tall windows on two sides and heated by an open fire in "
            "the winter. Its long tables, green lamps and leather chairs have hardly changed since "
            "the room was built, and it is often used as a setting by film makers, which brings in "
            "welcome income.",
            "Bookbinding and repair are done in a small workshop in the basement. Volunteers learn "
            "to sew loose sections, replace worn spines and make boxes for fragile volumes, and "
            "each year they repair several hundred books that would otherwise have to be "
            "withdrawn from the shelves.",
        ],
    ),
}

# (id, kind, name, words wanted, the fact, the question about it)
DOCUMENTS = [
    (
        "karsholm",
        "lighthouse",
        "Karsholm Light",
        900,
        "The lamp was converted from paraffin to electric power in the winter of 1931, when a diesel "
        "generator was carried up the cliff path by a team of twelve horses.",
        "When did the lighthouse change from paraffin to electricity with a generator hauled up by horses?",
    ),
    (
        "vellan",
        "lighthouse",
        "Vellan Point Light",
        1500,
        "In 1968 the keeper's daughter, Ingrid Moss, rescued nine fishermen from a capsized trawler by "
        "rowing out alone through the storm.",
        "Which keeper's daughter rowed out in a storm and saved the crew of a capsized trawler?",
    ),
    (
        "hollow-reef",
        "lighthouse",
        "Hollow Reef Light",
        2200,
        "The tower leans eleven centimetres to the north because its foundation was laid on a bed of "
        "compacted seaweed instead of rock.",
        "Why does the lighthouse tower lean? Its foundation was laid on seaweed",
    ),
    (
        "grey-sound",
        "lighthouse",
        "Grey Sound Light",
        2900,
        "Its fog horn was retuned to the note B flat after complaints that the previous pitch "
        "frightened the sheep on the neighbouring farm.",
        "fog horn retuned to a different note because it frightened the sheep",
    ),
    (
        "almsbury",
        "orchard",
        "Almsbury Orchard",
        700,
        "A hard frost on the night of the fourteenth of May destroyed almost all of the blossom, and "
        "the harvest fell to a twentieth of the usual crop of apples.",
        "late frost in May that destroyed the blossom and ruined the apple harvest",
    ),
    (
        "brackenfield",
        "orchard",
        "Brackenfield Orchard",
        1300,
        "The orchard's rare pear, the Brackenfield Russet, survives only as a single grafted tree "
        "kept inside a walled garden.",
        "rare pear variety surviving as one grafted tree in a walled garden",
    ),
    (
        "tilworth",
        "orchard",
        "Tilworth Orchard",
        1900,
        "Cider pressed here was once exported to Norway in oak barrels lined with beeswax to keep it "
        "from souring on the voyage.",
        "cider exported to Norway in barrels lined with beeswax",
    ),
    (
        "ormside",
        "orchard",
        "Ormside Orchard",
        2600,
        "Beekeepers bring forty hives into the rows of trees each April, and the fees for this "
        "pollination paid for a new irrigation pond.",
        "How was the irrigation pond paid for? Beekeepers' hives brought in for pollination",
    ),
    (
        "mount-carrow",
        "observatory",
        "Mount Carrow Observatory",
        800,
        "In 1957 two members discovered a faint comet while calibrating the newly installed spectrograph.",
        "comet discovered while calibrating a new spectrograph",
    ),
    (
        "felsted",
        "observatory",
        "Felsted Observatory",
        1400,
        "The motor that rotates the dome failed during the total eclipse of 1999, so the staff turned "
        "the dome by hand with a wooden capstan.",
        "staff turned the dome by hand with a capstan when the motor broke during an eclipse",
    ),
    (
        "larkmoor",
        "observatory",
        "Larkmoor Observatory",
        2000,
        "A colony of bats roosting in the telescope housing forces the observatory to close every "
        "summer under a conservation order.",
        "bats roosting in the telescope force the observatory to close in summer",
    ),
    (
        "quenby",
        "observatory",
        "Quenby Observatory",
        2800,
        "The telescope mirror was ground from a single block of glass recovered from the wreck of a "
        "sunken cargo ship.",
        "telescope mirror made from glass salvaged from a shipwreck",
    ),
    (
        "ashdown",
        "railway",
        "the Ashdown branch line",
        750,
        "The line closed in 1962 after a landslide buried the cutting near Pell Wood under eight "
        "metres of clay.",
        "a landslide buried the railway cutting in clay and closed the line",
    ),
    (
        "corrieburn",
        "railway",
        "the Corrieburn railway",
        1600,
        "A steam locomotive named Lady Elspeth once ran the twenty miles to the coast in nineteen "
        "minutes, a speed record that stood for forty years.",
        "steam locomotive that set a speed record running to the coast",
    ),
    (
        "westmere",
        "railway",
        "the Westmere line",
        2100,
        "Passengers could post letters in a sorting van attached to the evening train, and each one "
        "was stamped with a special travelling postmark.",
        "letters posted in a sorting van on the evening train with a travelling postmark",
    ),
    (
        "dunlow",
        "railway",
        "the Dunlow valley railway",
        2700,
        "The viaduct was painted with red oxide every seven years, a job that kept a crew of fifteen "
        "painters busy for the whole summer.",
        "how often was the viaduct repainted with red oxide and by how many painters",
    ),
    (
        "harwick",
        "library",
        "the Harwick Library",
        650,
        "The oldest item in the collection is a herbal manuscript from 1420 that was found wrapped in "
        "oilcloth inside a chimney.",
        "medieval herbal manuscript found hidden inside a chimney",
    ),
    (
        "selby",
        "library",
        "the Selby Reading Room",
        1200,
        "Readers have been forbidden to bring ink into the room since a spilled bottle ruined the "
        "only map of the county in 1874.",
        "why ink was banned from the reading room after a map was ruined",
    ),
    (
        "marrowgate",
        "library",
        "the Marrowgate Library",
        1800,
        "Besides its books the library lends out telescopes, sewing machines and a violin to its members.",
        "library that lends sewing machines and a violin as well as books",
    ),
    (
        "pennock",
        "library",
        "the Pennock Library",
        2500,
        "During the war the entire collection was evacuated to a slate mine in Wales and came back "
        "without a single volume lost.",
        "books evacuated to a slate mine during the war",
    ),
]


def _words(text: str) -> int:
    return len(text.split())


def _fill(paragraphs: list[str], pool: list[str], turn: int, limit: int) -> int:
    """Append ``pool``'s paragraphs in turn, from ``turn``, until ``paragraphs`` hold ``limit``
    words; return the next turn."""
    while sum(map(_words, paragraphs)) < limit:
        paragraphs.append(pool[turn % len(pool)])
        turn += 1
    return turn


def documents() -> list[tuple[str, str]]:
    """``(id, text)`` of every report: its kind's opening, then its kind's and the general
    paragraphs in turn until about 5/6 of the wanted length, its fact, then more paragraphs."""
    out = []
    for number, (id_, kind, name, wanted, fact, _) in enumerate(DOCUMENTS):
        opening, own = KINDS[kind]
        pool = own + GENERAL[number % len(GENERAL) :] + GENERAL[: number % len(GENERAL)]
        paragraphs = [opening.format(name=name)]
        turn = _fill(paragraphs, pool, 0, wanted * 5 // 6)
        paragraphs.append(f"One fact sets {name} apart. {fact}")
        _fill(paragraphs, pool, turn, wanted)
        out.append((id_, "\n\n".join(paragraphs)))
    return out


QUERIES = [(question, id_) for id_, _, _, _, _, question in DOCUMENTS]
FACTS = {id_: fact for id_, _, _, _, fact, _ in DOCUMENTS}
