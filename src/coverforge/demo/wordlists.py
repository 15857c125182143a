"""Words the synthetic catalogue is drawn from: names, genre-flavoured title words and blurb sentences.

Each primary genre has its own vocabulary so that titles and blurbs carry the genre in words the
text encoder can pick up, as real jacket copy does. Sentence templates use `str.format` slots that
`catalogue.py` fills from `SLOTS` (shared) and the genre's own `slots`.
"""

from __future__ import annotations

FIRST_NAMES = [
    "Anna", "Marcus", "Eleanor", "David", "Priya", "Thomas", "Grace", "Samuel", "Olivia", "James",
    "Hannah", "Daniel", "Ruth", "Oliver", "Clara", "Henry", "Maya", "Robert", "Iris", "Peter",
    "Zoë", "José", "Siobhán", "Björn", "Chloé", "Łukasz", "Renée", "Søren", "Amélie", "Noémie",
    "Ngozi", "Hiroshi", "Åsa", "Inés", "François", "Dağ", "Yusuf", "Mei", "Tomás", "Elodie",
]
LAST_NAMES = [
    "Whitfield", "Carter", "Hale", "Morrison", "Ashworth", "Bennett", "Lowell", "Reyes", "Fairbanks",
    "Kingsley", "Marsh", "Holloway", "Pryce", "Sutherland", "Quinn", "Vance", "Ellison", "Abbott",
    "Müller", "Núñez", "O'Connor", "Kowalczyk", "Ødegaard", "Dubois", "Nakamura", "Okafor", "García",
    "Lindqvist", "Brontë", "Szabó", "Çelik", "Fernández", "Novák", "Larsen", "Moreau", "Adeyemi",
]

FORMATS = ["Paperback", "Hardcover", "Kindle Edition", "Mass Market Paperback", "ebook"]
EDITIONS = ["", "", "", "", "First Edition", "Anniversary Edition", "Special Edition", "Reprint"]

# Filled the same way in every genre.
SLOTS = {
    "number": ["two", "three", "seven", "twelve", "forty", "a hundred"],
    "time": ["one long winter", "a single night", "three days", "the final summer", "a year and a day"],
    "feeling": ["hope", "grief", "courage", "guilt", "longing", "loyalty", "fear", "wonder"],
}

# Closing lines of jacket copy, used across genres.
PRAISE = [
    "Told with {praise_adj} prose and unforgettable characters, this is a novel about {feeling} and the price of the choices we make.",
    "From an acclaimed voice comes a {praise_adj} story that readers will not be able to put down until the very last page.",
    "{praise_adj_cap}, moving and impossible to forget, it is a book about {feeling}, family and what we owe to one another.",
    "Perfect for fans of sweeping, character-driven stories, it asks how far any of us would go for {feeling}.",
]
PRAISE_ADJ = ["luminous", "gripping", "razor-sharp", "lyrical", "propulsive", "heartfelt", "haunting"]

GENRE_WORDS: dict[str, dict] = {
    "Fantasy": {
        "secondary": ["Adventure", "Young Adult", "Magic", "Epic Fantasy", "Fiction", "Dragons", "High Fantasy"],
        "title_adj": ["Shattered", "Silver", "Hollow", "Ember", "Crowned", "Forgotten", "Starlit", "Thorned", "Gilded"],
        "title_noun": ["Crown", "Throne", "Dragon", "Sword", "Moon", "Kingdom", "Oath", "Spell", "Tower", "Mage"],
        "title_plural": ["Kings", "Shadows", "Dragons", "Thorns", "Embers", "Storms", "Ravens", "Wolves"],
        "subtitle": ["Book One of the Ashen Throne", "A Tale of the Northern Reaches", "The Moonborn Saga", "Chronicles of Élandor"],
        "slots": {
            "hero_role": ["a farm girl", "an exiled prince", "a young thief", "the last dragon rider", "an apprentice mage"],
            "place": ["the kingdom of Valdris", "the Silverwood", "the mountains of Kaer Morwen", "the Ashen Isles", "Élandor"],
            "villain": ["the Shadow King", "a sorceress of the old blood", "the Hollow Court", "an ancient dragon"],
            "object": ["a stolen crown", "a blade forged in starfire", "the last spellbook", "a moonstone amulet"],
        },
        "sentences": [
            "In {place}, where magic is outlawed and the old gods sleep beneath the mountains, {hero} has spent {time} hiding a dangerous gift.",
            "When {villain} rises to claim the throne, {hero_role} named {hero} must cross the Silverwood with {object} and a band of unlikely allies.",
            "Pursued by wolves, wraiths and soldiers of the crown, they travel through enchanted forests, ruined castles and frozen passes.",
            "Every spell {hero} casts burns a memory away, and the moon grows redder each night that the prophecy remains unfulfilled.",
            "Old alliances between elves, dwarves and the kingdoms of men are breaking, and {number} banners gather on the plains for war.",
            "To save {place}, {hero} will have to master the magic that killed her mother and face the dragon that waits beyond the sea.",
            "Betrayed by a trusted mentor and hunted by {villain}, the companions learn that the legend of the chosen one was a lie.",
            "An epic tale of swords and sorcery, of courage and sacrifice, set in a richly imagined world of ancient magic.",
            "The first book of a sweeping fantasy saga, it follows a band of heroes on a quest to restore the rightful heir to the throne.",
            "Beneath the castle lies a door sealed for a thousand years, and only {object} can open it before the eclipse.",
        ],
    },
    "Science Fiction": {
        "secondary": ["Space", "Dystopia", "Fiction", "Space Opera", "Adventure", "Cyberpunk", "Aliens"],
        "title_adj": ["Dark", "Quantum", "Silent", "Orbital", "Infinite", "Broken", "Neon", "Distant", "Red"],
        "title_noun": ["Horizon", "Signal", "Station", "Orbit", "Nebula", "Protocol", "Colony", "Singularity", "Drift"],
        "title_plural": ["Stars", "Machines", "Worlds", "Satellites", "Suns", "Signals", "Androids"],
        "subtitle": ["A Novel of the Expanse", "Book One of the Helios Cycle", "Transmissions from Kepler-442b", "The Andrómeda Files"],
        "slots": {
            "hero_role": ["a starship pilot", "a xenobiologist", "a rogue android", "a salvage engineer", "a colony medic"],
            "place": ["the orbital station Helios", "a terraformed Mars", "the outer colonies", "the generation ship Meridian", "Kepler-442b"],
            "villain": ["a rogue artificial intelligence", "the Consortium", "an alien hive mind", "the planetary governor"],
            "object": ["a signal from deep space", "an encrypted data core", "a derelict alien ship", "a prototype warp drive"],
        },
        "sentences": [
            "In the year 2247, humanity has spread across {number} star systems, and {place} is the last outpost before the dark.",
            "When {hero_role} named {hero} intercepts {object}, she uncovers a conspiracy that reaches from the colonies to the heart of Earth.",
            "The artificial intelligence that runs the ship has begun to lie, and the crew has only {time} of oxygen left.",
            "Hunted by {villain} across asteroid belts and abandoned space stations, {hero} must decide whom to trust among androids and humans.",
            "Beyond the edge of the galaxy, something ancient is waking, and its signal is rewriting the code of every machine it touches.",
            "A thrilling space opera of interstellar war, first contact and the future of the human species.",
            "On a dying planet under twin suns, the last engineers race to launch a fleet of ships before the orbit decays.",
            "Time dilation means that every jump through the wormhole costs {hero} decades of life back home.",
            "Smart, fast and scientifically rigorous, it imagines a future of quantum computers, cybernetic implants and colonies among the stars.",
            "As the station's reactors fail one by one, the survivors discover that they were never alone in orbit.",
        ],
    },
    "Romance": {
        "secondary": ["Contemporary", "Fiction", "Contemporary Romance", "Chick Lit", "Womens Fiction", "Love", "Adult Fiction"],
        "title_adj": ["Sweet", "Secret", "Summer", "Forever", "Wild", "Tender", "Perfect", "Little", "Golden"],
        "title_noun": ["Kiss", "Heart", "Promise", "Wedding", "Love", "Bakery", "Valentine", "Affair", "Bride"],
        "title_plural": ["Roses", "Hearts", "Letters", "Kisses", "Summers", "Vows", "Secrets"],
        "subtitle": ["A Love Story", "A Novel", "The Harbour Cottage Series", "Un été à Provence"],
        "slots": {
            "hero_role": ["a wedding planner", "a small-town baker", "a divorce lawyer", "a florist", "a struggling violinist"],
            "place": ["a seaside town in Cornwall", "a vineyard in Provence", "Manhattan", "a snowy ski lodge", "a little café in Paris"],
            "villain": ["her ex-fiancé", "a meddling grandmother", "a rival bakery owner", "his disapproving family"],
            "object": ["a box of old love letters", "a fake engagement", "a wedding invitation", "a shared inheritance"],
        },
        "sentences": [
            "{hero_cap} has sworn off love after her last heartbreak, until she returns to {place} for {time}.",
            "He is charming, infuriating and entirely the wrong man, and he is also the only person who can help her save the family business.",
            "What begins as {object} soon turns into something neither of them expected: a real chance at falling in love.",
            "Between candlelit dinners, stolen kisses and late-night confessions, the walls around her heart begin to crumble.",
            "But with {villain} determined to keep them apart, they will have to decide whether love is worth the risk.",
            "A swoon-worthy, heartwarming romance about second chances, true love and finding home where you least expect it.",
            "{hero_role_cap} and a brooding single father are forced to share a cottage for the summer, and sparks fly from the very first day.",
            "Funny, sexy and full of heart, it is the perfect read for anyone who believes in happily ever after.",
            "As the wedding day approaches, old feelings resurface, and the bride's sister falls for the best man.",
            "Their romance blossoms among roses, love letters and sunsets over the sea, but a secret from the past threatens everything.",
        ],
    },
    "Thriller": {
        "secondary": ["Mystery", "Crime", "Suspense", "Fiction", "Mystery Thriller", "Detective", "Psychological Thriller"],
        "title_adj": ["Last", "Silent", "Deadly", "Missing", "Cold", "Final", "Broken", "Hidden", "Blind"],
        "title_noun": ["Witness", "Alibi", "Target", "Killer", "Verdict", "Hostage", "Trap", "Confession", "Suspect"],
        "title_plural": ["Lies", "Bones", "Sins", "Secrets", "Witnesses", "Strangers", "Crimes"],
        "subtitle": ["A Detective Quinn Novel", "A Thriller", "The Kowalczyk Files", "A Novel of Suspense"],
        "slots": {
            "hero_role": ["a homicide detective", "a forensic psychologist", "a former CIA agent", "an investigative journalist", "a defence attorney"],
            "place": ["a rain-soaked Chicago", "a remote Scottish island", "the streets of London", "a quiet suburb", "Washington D.C."],
            "villain": ["a serial killer", "a corrupt senator", "a faceless hacker", "the man who framed her father"],
            "object": ["a body in the river", "an anonymous phone call", "a missing hard drive", "a ransom note"],
        },
        "sentences": [
            "When {object} turns up in {place}, {hero_role} named {hero} is pulled into a case she swore she would never touch again.",
            "The victim was murdered in a locked room, the only witness has vanished, and the killer has left a message meant for her alone.",
            "With {time} to stop {villain} before he strikes again, {hero} must follow a trail of lies, bloodstains and buried evidence.",
            "Everyone in town has a secret and an alibi, and every one of them is lying about the night of the crime.",
            "Someone inside the police department is feeding information to the killer, and the next target may be her own daughter.",
            "A pulse-pounding, twist-filled thriller that will keep you guessing until the shocking final chapter.",
            "As the body count rises and the FBI takes over, {hero} goes rogue, hunting a murderer who always seems one step ahead.",
            "The ransom deadline is midnight, the phone will not stop ringing, and nothing about the kidnapping is what it seems.",
            "Relentless, dark and tightly plotted, it is a psychological thriller about guilt, revenge and the lies we tell to survive.",
            "Forensic evidence points to a dead man, and a string of cold cases suddenly looks like the work of one patient killer.",
        ],
    },
    "Horror": {
        "secondary": ["Paranormal", "Fiction", "Gothic", "Supernatural", "Ghosts", "Vampires", "Occult"],
        "title_adj": ["Hungry", "Drowned", "Rotting", "Whispering", "Pale", "Cursed", "Buried", "Hollow", "Crawling"],
        "title_noun": ["House", "Dark", "Orchard", "Asylum", "Grave", "Church", "Swamp", "Well", "Harvest"],
        "title_plural": ["Bones", "Ghosts", "Crows", "Teeth", "Dead", "Children", "Graves"],
        "subtitle": ["A Novel of Terror", "A Ghost Story", "Tales from Blackmoor", "The Nachtmähr Cycle"],
        "slots": {
            "hero_role": ["a grieving widow", "a paranormal investigator", "a young priest", "a night nurse", "a horror novelist"],
            "place": ["an abandoned asylum in Maine", "a crumbling Victorian mansion", "a village on the moors", "the woods behind the church", "Blackmoor"],
            "villain": ["something in the cellar", "a demon older than the town", "the drowned children", "a pale figure in the trees"],
            "object": ["a cursed doll", "a diary written in blood", "a sealed coffin", "an old photograph that changes every night"],
        },
        "sentences": [
            "When {hero_role} named {hero} moves into {place}, the scratching in the walls begins on the very first night.",
            "The locals will not speak of what happened there in 1893, and the graves in the churchyard are empty.",
            "After she finds {object}, the whispers grow louder, the mirrors show rooms that do not exist, and her children stop sleeping.",
            "Something is hungry in the dark, and it has been waiting {time} for someone foolish enough to open the door.",
            "{villain_cap} walks the fog-bound roads, and those who see it are found weeks later, drained and smiling.",
            "A chilling, blood-soaked tale of possession, madness and the evil that hides inside ordinary houses.",
            "As the dead begin to rise from the swamp and the crows gather on the roof, {hero} realises the curse is hers.",
            "Deeply unsettling and impossible to put down, it will make you afraid of the dark all over again.",
            "Every night at three o'clock, the nursery door opens by itself, and something pale crawls across the ceiling.",
            "Haunted by ghosts, demons and her own grief, she must uncover the truth before the house claims another soul.",
        ],
    },
    "History": {
        "secondary": ["Nonfiction", "Biography", "War", "Military History", "Politics", "European History", "World War II"],
        "title_adj": ["Great", "Forgotten", "Last", "Imperial", "Iron", "Long", "Lost", "Fallen", "Golden"],
        "title_noun": ["Empire", "Revolution", "Republic", "Dynasty", "Century", "Campaign", "Treaty", "Crusade", "Voyage"],
        "title_plural": ["Kings", "Emperors", "Armies", "Nations", "Merchants", "Generals", "Queens"],
        "subtitle": ["A History", "The Rise and Fall of an Empire", "Europe, 1914-1945", "Una historia de España"],
        "slots": {
            "hero_role": ["a young general", "an ambitious queen", "a merchant banker", "a reforming emperor", "a forgotten diplomat"],
            "place": ["the Ottoman Empire", "Renaissance Florence", "Victorian Britain", "revolutionary France", "the Habsburg court"],
            "villain": ["rival dynasties", "famine and plague", "the collapse of the old order", "a ruinous war"],
            "object": ["newly opened archives", "thousands of letters and diaries", "a forgotten treaty", "the records of the East India Company"],
        },
        "sentences": [
            "Drawing on {object}, this authoritative history tells the story of {place} from its rise to its dramatic fall.",
            "The historian {hero} {surname} brings to life the kings, generals, merchants and ordinary people who shaped a turbulent century.",
            "It was an age of empire and revolution, of great battles and fragile treaties, and of {villain} that redrew the map of Europe.",
            "At its centre stands {hero_role}, whose decisions in {time} changed the course of world history.",
            "A sweeping narrative history of war, politics and diplomacy, grounded in decades of archival research.",
            "From the courts of monarchs to the trenches of the Western Front, it shows how the modern world was forged in conflict.",
            "Rich in detail and vivid in its portraits, the book overturns long-held myths about the causes of the war.",
            "This is nonfiction at its finest: a compelling account of ambition, power and the fall of an empire.",
            "Maps, timelines and portraits accompany an account of {number} generations of a dynasty that ruled for four centuries.",
            "Winner of major history prizes, it is a landmark study of the economy, society and culture of the period.",
        ],
    },
}
