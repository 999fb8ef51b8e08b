# ruff: noqa: E501  (regex tables read better unwrapped)
"""The default, LLM-free extractor: rules over first-person statements.

It reads each sentence a person says about themselves ("I moved to Berlin", "my sister Ana
lives in Lisbon", "I'm allergic to peanuts", "Lost my job yesterday") and turns it into a
standalone third-person fact ("Jon lost his job as a banker (on 19 January 2023)"), typed and
keyed by ``subject``/``predicate`` so later statements can supersede it. Dates stated relative
to the turn ("yesterday", "last week") are resolved against the turn's timestamp.

What it deliberately skips: questions, reactions and small talk ("I'm so happy for you",
"I agree"), assistant turns, and sentences without enough content words.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

from ..chunking import split_sentences
from .dates import resolve_date
from .types import ExtractedFact, TurnInput

logger = logging.getLogger(__name__)

NON_PERSON_ROLES = frozenset({"assistant", "ai", "system", "tool", "function", "bot", "model"})
_USER_ROLES = frozenset({"user", "human", "me"})

_STOP = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "but",
        "so",
        "if",
        "then",
        "than",
        "that",
        "this",
        "these",
        "those",
        "it",
        "its",
        "it's",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "am",
        "i",
        "i'm",
        "i've",
        "i'd",
        "i'll",
        "me",
        "my",
        "mine",
        "myself",
        "we",
        "we're",
        "we've",
        "our",
        "ours",
        "us",
        "you",
        "you're",
        "your",
        "yours",
        "he",
        "she",
        "they",
        "them",
        "their",
        "his",
        "her",
        "to",
        "of",
        "in",
        "on",
        "at",
        "for",
        "with",
        "from",
        "by",
        "about",
        "as",
        "into",
        "over",
        "after",
        "before",
        "up",
        "down",
        "out",
        "off",
        "just",
        "really",
        "very",
        "so",
        "too",
        "also",
        "totally",
        "definitely",
        "actually",
        "pretty",
        "quite",
        "much",
        "more",
        "most",
        "some",
        "any",
        "all",
        "not",
        "no",
        "yes",
        "do",
        "does",
        "did",
        "done",
        "have",
        "has",
        "had",
        "having",
        "will",
        "would",
        "could",
        "should",
        "can",
        "can't",
        "don't",
        "didn't",
        "won't",
        "gonna",
        "wanna",
        "gotta",
        "get",
        "got",
        "go",
        "going",
        "went",
        "lot",
        "lots",
        "thing",
        "things",
        "stuff",
        "what",
        "when",
        "where",
        "who",
        "why",
        "how",
        "oh",
        "wow",
        "hey",
        "hi",
        "hello",
        "yeah",
        "yep",
        "yup",
        "ok",
        "okay",
        "thanks",
        "thank",
        "sure",
        "well",
        "like",
        "love",
        "great",
        "good",
        "awesome",
        "cool",
        "nice",
        "amazing",
        "fun",
        "glad",
        "happy",
        "sorry",
        "know",
        "think",
        "feel",
        "felt",
        "mean",
        "means",
        "one",
        "there",
        "here",
        "now",
        "today",
        "still",
        "last",
        "next",
        "week",
        "weekend",
        "month",
        "year",
        "yesterday",
        "tomorrow",
        "tonight",
        "ago",
        "recently",
    ]
)

# Reactions and small talk about the other person: never facts about the speaker.
_REACTION = re.compile(
    r"^(?:\W*(?:oh|wow|yeah|yes|haha|aw+|hey|hi|omg|man|ah|ha|ooh|whoa|woah|so|well|thanks|thank you|totally|"
    r"absolutely|definitely|agreed?|true|right|sure|cool|nice|great|awesome|[a-z]+!)\W*)*"
    r"(?:i(?:'m| am) (?:so |really |super |very |just )*(?:glad|happy|sorry|proud|thrilled|stoked|excited|"
    r"impressed|touched|grateful|thankful) (?:for you|to hear|you|that you|about that|for your|it)|"
    r"i (?:totally |completely |really |definitely |so )?(?:agree|understand|get it|get you|know what you|"
    r"know how|bet|hope you|wish you|can imagine|can't imagine|appreciate|admire|see what you|"
    r"can tell|can see|believe in you|feel you)|"
    r"i(?:'m| am) here for you|i(?:'d| would) love to (?:see|hear)|i can't wait to (?:see|hear)|"
    r"(?:i )?(?:love|like) (?:that|this|it|those|these|your|how you)\b|i think (?:it's|that's|you|that is))",
    re.I,
)
_FIRST_PERSON = re.compile(r"\b(?:i|i'm|i've|i'd|i'll|my|me|myself|mine)\b", re.I)
_WE = re.compile(r"\b(?:we|we're|we've|our|us)\b", re.I)
_QUESTION_START = re.compile(
    r"^(?:what|who|where|when|why|how|do|does|did|are|is|was|were|can|could|would|will|have|has|any|got)\b",
    re.I,
)

_PAST_IRREGULAR = frozenset(
    [
        "was",
        "were",
        "went",
        "got",
        "saw",
        "made",
        "took",
        "came",
        "found",
        "began",
        "bought",
        "brought",
        "thought",
        "felt",
        "left",
        "met",
        "ran",
        "wrote",
        "gave",
        "told",
        "said",
        "knew",
        "lost",
        "won",
        "kept",
        "heard",
        "taught",
        "sat",
        "spent",
        "built",
        "sold",
        "paid",
        "sent",
        "became",
        "ate",
        "drank",
        "drove",
        "flew",
        "grew",
        "threw",
        "wore",
        "chose",
        "fell",
        "forgot",
        "hit",
        "put",
        "quit",
        "set",
        "cut",
        "let",
        "hurt",
        "did",
        "had",
        "could",
        "would",
        "should",
        "will",
        "can",
        "might",
        "must",
        "may",
        "shall",
        "used",
        "caught",
        "fought",
        "held",
        "led",
        "meant",
        "read",
        "rode",
        "sang",
        "slept",
        "spoke",
        "stood",
        "swam",
        "understood",
        "woke",
        "began",
        "broke",
        "dealt",
        "drew",
        "dug",
        "fed",
        "forgave",
        "hid",
        "hung",
        "lay",
        "lit",
        "shot",
        "shut",
        "sank",
        "stuck",
        "stung",
        "swore",
        "swept",
        "tore",
        "won't",
        "don't",
        "can't",
        "didn't",
        "wasn't",
        "haven't",
        "hadn't",
        "wouldn't",
        "couldn't",
        "shouldn't",
    ]
)
_ADVERBS = frozenset(
    [
        "just",
        "really",
        "also",
        "recently",
        "finally",
        "actually",
        "always",
        "never",
        "still",
        "usually",
        "totally",
        "definitely",
        "already",
        "even",
        "often",
        "sometimes",
        "absolutely",
        "truly",
        "honestly",
        "seriously",
        "literally",
        "only",
        "mostly",
        "kinda",
        "sorta",
    ]
)


def _conjugate(word: str) -> str:
    """Third-person singular of a present-tense verb (``love`` -> ``loves``)."""
    low = word.lower()
    special = {"am": "is", "have": "has", "do": "does", "go": "goes", "wanna": "wants to", "gotta": "has to",
               "gonna": "is going to", "'m": " is", "was": "was"}  # fmt: skip
    if low in special:
        return special[low]
    if low in _PAST_IRREGULAR or low.endswith(("ed", "ing")) or not low.isalpha():
        return word
    if low.endswith(("s", "sh", "ch", "x", "z", "o")):
        return word + "es"
    if low.endswith("y") and len(low) > 1 and low[-2] not in "aeiou":
        return word[:-1] + "ies"
    return word + "s"


_CASUAL_START = re.compile(
    r"^(?:just|finally|recently|lost|got|went|started|finished|moved|gonna|wanna|gotta|bought|joined|took|"
    r"made|visited|quit|adopted|been|had|did|love|loving|working|thinking|planning|trying|hoping|"
    r"heading|looking|getting|going)\b",
    re.I,
)


# Base forms that, right after "and"/"or"/"but"/"then" in a clause whose subject is the speaker,
# are almost always a second verb sharing that subject ("I work as a nurse and start night
# shifts"). Words that are as often nouns there ("paint", "drink", "help", "travel") are left out.
_COORD_VERBS = frozenset(
    [
        "start",
        "work",
        "live",
        "want",
        "need",
        "plan",
        "love",
        "like",
        "enjoy",
        "hate",
        "go",
        "take",
        "make",
        "try",
        "study",
        "teach",
        "visit",
        "spend",
        "play",
        "run",
        "write",
        "read",
        "cook",
        "bake",
        "sing",
        "volunteer",
        "walk",
        "hope",
        "think",
        "feel",
        "know",
        "get",
        "keep",
        "use",
        "look",
        "watch",
        "listen",
        "drive",
        "ride",
        "swim",
        "hike",
        "own",
        "have",
        "do",
        "leave",
        "come",
        "stay",
        "miss",
        "prefer",
        "practice",
        "meet",
        "see",
        "buy",
        "eat",
        "sleep",
        "finish",
        "manage",
        "lead",
        "care",
        "hang",
        "join",
        "attend",
        "collect",
        "build",
        "create",
        "grow",
        "raise",
        "believe",
        "remember",
        "wish",
        "save",
        "earn",
        "pay",
        "share",
        "take",
        "teach",
        "coach",
        "train",
        "mentor",
        "exercise",
        "move",
        "rent",
        "plan",
        "stop",
        "quit",
        "begin",
        "continue",
        "tend",
        "usually",
    ]
)
# "to <word>" before the conjunction: the second verb then shares the infinitive ("I want to
# travel and start a business") and must stay in its base form.
_INFINITIVE = re.compile(
    r"\bto (?!the\b|a\b|an\b|my\b|our\b|your\b|his\b|her\b|their\b|this\b|that\b|"
    r"these\b|those\b|some\b|work\b|school\b|bed\b|church\b|[A-Z0-9])[a-z]+",
)
_WE_SUBJECT = {"we're": "are", "we are": "are", "we've": "have", "we'd": "would", "we'll": "will",
               "we were": "were"}  # fmt: skip


def _possessive(name: str) -> str:
    return f"{name}'s"


def to_third_person(sentence: str, name: str) -> str:
    """Rewrite a first-person sentence about ``name`` in the third person.

    In a plural statement (no "I"/"my"), "we"/"our" become "``name`` and others"/"their". A
    generic name such as "The user" is lower-cased where it does not start the sentence, and a
    second verb coordinated with the first ("I work as a nurse and start nights") agrees with
    the new subject.

    Example:
        >>> to_third_person("I love hiking with my dog.", "Ana")
        "Ana loves hiking with Ana's dog."
    """
    s = sentence.strip()
    if not _FIRST_PERSON.search(s):
        # Only a plural statement is about the speaker and others; in "I think we should"
        # or "since we last spoke" the "we" may include the listener, so it stays as said.
        plural = f"{name} and others"
        s = re.sub(r"\b[Ww]e(?:'re| are)\b", f"{plural} are", s)
        s = re.sub(r"\b[Ww]e've\b", f"{plural} have", s)
        s = re.sub(r"\b[Ww]e'd\b", f"{plural} would", s)
        s = re.sub(r"\b[Ww]e'll\b", f"{plural} will", s)
        s = re.sub(r"\b[Ww]e\b", plural, s)
        s = re.sub(r"\b[Oo]urs\b", "theirs", s)
        s = re.sub(r"\b[Oo]ur\b", "their", s)
        s = re.sub(r"\b[Oo]urselves\b", "themselves", s)
        s = re.sub(r"\bus\b", plural, s)
    s = re.sub(r"\bI'm\b|\bI am\b", f"{name} is", s)
    s = re.sub(r"\bI've\b", f"{name} has", s)
    s = re.sub(r"\bI'd\b", f"{name} would", s)
    s = re.sub(r"\bI'll\b", f"{name} will", s)
    agreed: list[int] = []  # where a verb was put in the third person singular

    def verb(m: re.Match[str]) -> str:
        adverbs, word = m.group(1) or "", m.group(2)
        new = _conjugate(word)
        if new != word and new.lower() not in ("is", "was"):
            agreed.append(m.start())
        return f"{name} {adverbs}{new}"

    s = re.sub(r"\bI ((?:(?:" + "|".join(_ADVERBS) + r") )*)([A-Za-z']+)", verb, s)
    if agreed:
        s = _agree_coordinated(s, agreed[0])
    s = re.sub(r"\bI\b", name, s)
    s = re.sub(r"\bmy\b", _possessive(name), s, flags=re.I)
    s = re.sub(r"\bmine\b", _possessive(name), s, flags=re.I)
    s = re.sub(r"\bmyself\b", "themself", s, flags=re.I)
    s = re.sub(r"\bme\b", name, s, flags=re.I)
    # Casual speech drops the subject ("Lost my job yesterday", "Gonna start a studio").
    if not s.startswith(name) and _CASUAL_START.match(s):
        head, _, tail = s.partition(" ")
        s = f"{name} {_conjugate(head.lower())} {tail}".strip()
    s = s[0].upper() + s[1:]
    if name[:1].isupper() and name.split()[0].lower() in ("the", "a", "an"):
        # "The user" is a common noun phrase: capitalised only where a sentence starts.
        lower = name[0].lower() + name[1:]
        s = s[:1] + re.sub(rf"(?<![.!?] )\b{re.escape(name)}\b", lower, s[1:])
    return s.rstrip(" ,;:-") if s[-1:] in ".!" else s.rstrip(" ,;:-") + "."


def _agree_coordinated(s: str, start: int) -> str:
    """Put a base-form verb coordinated with the subject's verb at ``start`` in agreement."""
    m = re.compile(
        r"\b(and|or|but|then|and then|and also|but also|and now)( (?:" + "|".join(_ADVERBS) + r"))? "
        r"([a-z]+)\b"
    ).search(s, start)
    if m is None or m.group(3) not in _COORD_VERBS:
        return s
    between = s[start : m.start()]
    if _INFINITIVE.search(between) or re.search(r"\b(?:will|would|can|could|should|must|might|may|'ll|'d)\b",
                                                between):  # fmt: skip
        return s
    return s[: m.start(3)] + _conjugate(m.group(3)) + s[m.end(3) :]


def _clause(text: str, limit: int = 12) -> str:
    """The object clause starting at ``text``, cut at the first clause boundary."""
    cut = re.split(
        r"[,.;!?()]| - | but | because | cause | 'cause | since | so that | and i | and it | which ", text
    )[0]
    cut = _TIME_TAIL.sub("", cut)
    words = cut.split()
    return " ".join(words[:limit]).strip(" '\"")


def _key(text: str, n: int = 4) -> str:
    """A short normalised key of a phrase (content words), for predicates."""
    words = [w for w in re.findall(r"[a-z0-9']+", text.lower()) if w not in _STOP]
    return " ".join(words[:n]) or text.lower().strip()[:30]


def _content_words(text: str) -> list[str]:
    return [w for w in re.findall(r"[a-z0-9']+", text.lower()) if w not in _STOP and len(w) > 2]


_ENTITY = re.compile(r"(?<![.!?]\s)(?<!^)\b([A-Z][a-zA-Z'&-]+(?:\s+(?:of\s+)?[A-Z][a-zA-Z'&-]+)*)")
_NOT_ENTITY = frozenset(
    [
        "I",
        "I'm",
        "I've",
        "I'd",
        "I'll",
        "Hey",
        "Hi",
        "Wow",
        "Oh",
        "Yeah",
        "Yes",
        "No",
        "Thanks",
        "Thank",
        "Okay",
        "OK",
        "Sure",
        "Cool",
        "Awesome",
        "Great",
        "Nice",
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
        "Mom",
        "Dad",
        "Lol",
        "Omg",
    ]
)


def entities(text: str) -> list[str]:
    """Capitalised names mentioned mid-sentence (people, places, organisations, titles)."""
    out: list[str] = []
    for m in _ENTITY.finditer(text):
        ent = m.group(1).strip("'")
        if ent not in _NOT_ENTITY and ent.split()[0] not in _NOT_ENTITY and ent not in out:
            out.append(ent)
    return out


_POLARITY = {
    "love": "loves", "adore": "loves", "like": "likes", "enjoy": "enjoys", "prefer": "prefers",
    "hate": "hates", "dislike": "dislikes", "can't stand": "dislikes", "don't like": "dislikes",
    "do not like": "dislikes", "don't enjoy": "dislikes", "am into": "likes", "'m into": "likes",
    "'m a big fan of": "loves", "am a big fan of": "loves", "'m a fan of": "likes", "am a fan of": "likes",
    "'m passionate about": "loves", "am passionate about": "loves", "no longer like": "dislikes",
    "don't eat": "avoids", "never eat": "avoids", "stopped eating": "avoids",
}  # fmt: skip
_SUBJ = r"(?:\bi|^)"
_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("name", re.compile(r"(?i:\bmy name(?: is|'s)|\bcall me|\bpeople call me|\bi'm|\bi am|^(?:hi|hey|hello)?,? ?(?:this is|it's)) (?P<v>[A-Z][a-z'-]+(?: [A-Z][a-z'-]+)?)(?=\s*(?:[,.!;]|$|(?i:and|from|here|by the way)\b))")),
    ("age", re.compile(r"\bi(?:'m| am) (?P<v>\d{1,3}) (?:years? old|yo)\b|\bi (?:just )?turned (?P<v2>\d{1,3})\b", re.I)),
    ("lives_in", re.compile(r"\bi (?:currently |now |still |also )?live (?:in|at|near) (?P<v>[^,.;!?]+)", re.I)),
    ("moved_to", re.compile(r"(?:\bi (?:just |recently |finally )?|^(?:just |finally )?)(?:moved|relocated) (?:to|into) (?P<v>[^,.;!?]+)", re.I)),
    ("from", re.compile(r"\bi(?:'m| am) (?:originally )?from (?P<v>[A-Z][^,.;!?]+)|\bi grew up in (?P<v2>[^,.;!?]+)", re.I)),
    ("works_as", re.compile(r"\bi (?:work|am working|'m working) as (?:an? )?(?P<v>[^,.;!?]+)|\bmy job is (?:an? )?(?P<v2>[^,.;!?]+)|\bi(?:'m| am) an? (?P<v3>(?:\w+ )?(?:teacher|nurse|doctor|engineer|developer|designer|lawyer|artist|writer|student|chef|manager|banker|counselor|musician|dancer|photographer|accountant|scientist|programmer|consultant|painter|architect|therapist|pharmacist|entrepreneur|freelancer|volunteer|researcher|professor|analyst))\b", re.I)),
    ("works_at", re.compile(r"\bi (?:work|am working|'m working) (?:at|for) (?P<v>[^,.;!?]+)|(?:\bi |^)(?:just )?(?:got|started|landed|accepted) a (?:new )?(?:job|position|role) (?:at|with) (?P<v2>[^,.;!?]+)", re.I)),
    ("job_status", re.compile(r"(?:\bi |^)(?:just )?(?P<v>lost|quit|left) my job\b|\bi(?:'m| am|'ve been) (?P<v2>unemployed|laid off|fired|retired)\b", re.I)),
    ("studies", re.compile(r"\bi(?:'m| am)? (?:studying|majoring in) (?P<v>[^,.;!?]+)|\bi study (?P<v2>[^,.;!?]+)", re.I)),
    ("allergy", re.compile(r"\bi(?:'m| am) (?P<neg>not )?allergic to (?P<v>[^,.;!?]+)", re.I)),
    ("diet", re.compile(r"\bi(?:'m| am) (?:a |now a |now )?(?P<v>vegetarian|vegan|pescatarian|gluten[- ]free|lactose intolerant)\b", re.I)),
    ("marital_status", re.compile(r"\bi(?:'m| am| got| just got) (?P<v>married|engaged|divorced|single|separated|widowed)\b", re.I)),
    ("partner", re.compile(r"\bmy (?P<rel>wife|husband|partner|boyfriend|girlfriend|fianc[ée]e?|spouse)(?:'s name is|,| is named| named| is called)? (?P<v>[A-Z][a-z]+)?", re.I)),
    ("relation", re.compile(r"\bmy (?P<rel>sister|brother|mom|mother|dad|father|son|daughter|kids?|children|cousin|aunt|uncle|grandma|grandmother|grandpa|grandfather|niece|nephew|friend|best friend|roommate|boss|colleague|dog|cat|puppy|kitten|pet)(?:'s name is|,| named| called|) (?P<v>[A-Z][a-z]+)\b", re.I)),
    ("children", re.compile(r"\bi have (?P<v>\d+|one|two|three|four|five) (?:kids|children|sons|daughters)\b", re.I)),
    ("pet", re.compile(r"\bi (?:have|got|adopted) an? (?:new )?(?P<v>dog|cat|puppy|kitten|parrot|hamster|rabbit|bunny|fish|turtle|snake)\b", re.I)),
    ("favorite", re.compile(r"\bmy (?:all[- ]time )?(?:favou?rite|fave?|fav|top pick for) (?P<cat>[\w ]{2,30}?) (?:is|are|has to be|would be) (?P<v>[^,.;!?]+)", re.I)),
    ("favorite_rev", re.compile(r"\b(?P<v>[\w' ]{2,40}) (?:is|are) my (?:all[- ]time )?(?:favou?rite|fave?|fav|top pick)(?: (?P<cat>[\w ]{2,20}))?", re.I)),
    ("preference", re.compile(r"(?:\bi(?: really| absolutely| totally| just| also| still| truly| do)? |^(?:really |totally )?)(?P<pol>love|adore|like|enjoy|prefer|hate|dislike|can't stand|don't like|do not like|don't enjoy|no longer like|don't eat|never eat|stopped eating|'m into|am into|'m a big fan of|am a big fan of|'m a fan of|am a fan of|'m passionate about|am passionate about) (?P<v>[^,.;!?]+)", re.I)),
    ("plans", re.compile(r"\bi(?:'m| am)? (?:planning|going|hoping|about|aiming|trying|preparing|getting ready) (?:on |to )(?P<v>[^,.;!?]+)|\bi (?:plan|intend|want|hope|aim|decided|need) to (?P<v2>[^,.;!?]+)|\b(?:i'm |i am |)?(?:gonna|wanna) (?P<v3>[^,.;!?]+)|\bi(?:'ll| will) (?P<v4>[^,.;!?]+)|\bi(?:'m| am) thinking (?:of|about) (?P<v5>[^,.;!?]+)|\bmy (?:plan|goal|dream) is to (?P<v6>[^,.;!?]+)", re.I)),
]  # fmt: skip

_PAST_EVENT = re.compile(
    r"(?:\bi (?:just |recently |finally |also |actually |even |already )*|^(?:just |finally |recently )?)"
    r"(?P<verb>went|visited|started|finished|got|bought|joined|took|tried|made|ran|attended|adopted|painted|"
    r"won|lost|met|saw|watched|read|wrote|learned|learnt|built|created|launched|opened|signed|volunteered|"
    r"traveled|travelled|moved|graduated|completed|received|celebrated|organized|hosted|baked|cooked|"
    r"played|performed|competed|climbed|hiked|camped|drew|designed|published|sold|applied|passed|quit|"
    r"left|found|discovered|picked up|enrolled|signed up|registered|gave|taught|helped|raised|donated|"
    r"participated|spoke|presented|recorded|released|joined|rescued|planted|made|had|did|used to|"
    r"have been|'ve been|'ve started|'ve got|have got|'ve never|have never|'ve always|have always|"
    r"'ve just|'ve finally|'ve recently|'ve also)\b(?P<rest>[^.;!?]*)",
    re.I,
)
_HAVE_STATE = re.compile(
    r"\bi (?:have|own|keep|collect|play|practice|teach|volunteer|run|write|paint|draw|cook|bake|"
    r"dance|sing|swim|hike|read|go to|attend|spend|take care of|look after|support|am|'m)\b(?P<rest>[^.;!?]*)"
    r"|\bmy (?P<what>[a-z]+(?: [a-z]+)?) (?:is|are|was|were|has|have|had) (?P<rest2>[^.;!?]+)",
    re.I,
)

_FACT_TYPES = {
    "name": "profile", "age": "profile", "lives_in": "location", "moved_to": "location", "from": "profile",
    "works_as": "work", "works_at": "work", "job_status": "work", "studies": "profile", "allergy": "profile",
    "diet": "preference", "marital_status": "relationship", "partner": "relationship",
    "relation": "relationship", "children": "relationship", "pet": "relationship", "favorite": "preference",
    "favorite_rev": "preference", "preference": "preference", "plans": "plan",
}  # fmt: skip


def subject_name(role: str) -> tuple[str, str]:
    """``(subject key, display name)`` of a speaker: ``"user"`` for generic user roles."""
    r = role.strip()
    if r.lower() in _USER_ROLES:
        return "user", "The user"
    return r.lower(), r


class RuleExtractor:
    """LLM-free fact extractor over first-person statements (the default).

    Args:
        min_content_words: Sentences with fewer content words are ignored as small talk.
        include_roles: Also extract from these roles even if they look non-human.
        max_facts_per_turn: Cap on facts from one turn (the most specific first).

    Example:
        >>> from mem_adapters.enrichment import RuleExtractor, TurnInput
        >>> facts = RuleExtractor().extract([TurnInput(id="t1", role="user", text="I moved to Berlin.")])
        >>> (facts[0].predicate, facts[0].value)
        ('lives_in', 'Berlin')
    """

    def __init__(
        self, *, min_content_words: int = 2, include_roles: Sequence[str] = (), max_facts_per_turn: int = 4
    ) -> None:
        self.min_content_words = min_content_words
        self.include_roles = {r.lower() for r in include_roles}
        self.max_facts_per_turn = max_facts_per_turn

    def extract(
        self,
        turns: Sequence[TurnInput],
        *,
        context: Sequence[TurnInput] = (),
        custom_instructions: str | None = None,
    ) -> list[ExtractedFact]:
        """Facts stated by the speakers of ``turns`` about themselves.

        ``custom_instructions`` containing ``"focus on <words>"`` also keeps sentences that
        mention those words even when they are not first-person.
        """
        focus = _focus_terms(custom_instructions)
        out: list[ExtractedFact] = []
        for turn in turns:
            role = turn.role.strip().lower()
            if role in NON_PERSON_ROLES and role not in self.include_roles:
                continue
            facts: list[ExtractedFact] = []
            seen: set[tuple[str, str]] = set()
            for sentence in _sentences(turn.text):
                for fact in self.extract_sentence(sentence, turn, focus=focus):
                    k = (fact.predicate, fact.value.lower())
                    if k not in seen:
                        seen.add(k)
                        facts.append(fact)
            facts.sort(key=lambda f: -f.confidence)
            out.extend(facts[: self.max_facts_per_turn])
        return out

    def extract_sentence(
        self, sentence: str, turn: TurnInput, *, focus: Sequence[str] = ()
    ) -> list[ExtractedFact]:
        """Facts of one sentence spoken in ``turn`` (first person, or third person about a name).

        When one sentence yields several typed facts, the first keeps the sentence as its text
        and each other one states its own aspect ("The user's partner is Sam."), so no two facts
        of a turn read the same and superseding one aspect leaves the others readable.
        """
        subject, name = subject_name(turn.role)
        s = sentence.strip()
        third = _third_person_subject(s, turn.role)
        if third is not None:
            # An observation like "Caroline moved to Berlin": read it as its subject's own words.
            subject, name, s = third
        if s.endswith("?") or (_QUESTION_START.match(s) and "?" in turn.text):
            return []
        lowered = s.lower()
        focused = any(w in lowered for w in focus)
        singular = bool(_FIRST_PERSON.search(s))
        # "We moved to Porto": the speaker is one of the subjects, so it is a fact about them.
        plural = not singular and bool(_WE.search(s))
        first_person = singular or (plural and _has_event_verb(s))
        casual = bool(re.match(r"^(?:just |finally |recently )?(?:lost|got|went|started|finished|moved|gonna|"
                               r"wanna|bought|joined|took|made|visited|quit|adopted)\b", s, re.I))  # fmt: skip
        if not (first_person or plural or casual or focused):
            return []
        if _REACTION.match(s) and not focused:
            return []
        # Patterns are written for "I"; a plural statement is matched in the singular.
        ms = _singular(s) if plural else s
        # Specific patterns carry their own evidence; the generic fallbacks need enough content.
        enough = len(_content_words(s)) >= self.min_content_words
        when = turn.timestamp
        resolved = resolve_date(s, when)
        facts: list[ExtractedFact] = []
        aspects: list[str | None] = []
        ents = entities(s)
        # Observations are already standalone third-person text; first-person speech is rewritten.
        text = sentence.strip() if third is not None else to_third_person(s, name)
        if resolved is not None and resolved.phrase.lower() not in text.lower():
            text = f"{text.rstrip('.')} ({resolved.phrase})."
        poss = f"{name}'s"

        def add(pred: str, value: str, ftype: str, conf: float, aspect: str | None = None) -> None:
            value = value.strip(" '\"")
            if not value:
                return
            facts.append(ExtractedFact(
                text=text, fact_type=ftype, subject=subject, predicate=pred, value=value,
                event_date=resolved.iso if resolved else None, confidence=conf,
                source_turn_ids=[turn.id], entities=ents,
            ))  # fmt: skip
            aspects.append(aspect)

        for pred, pattern in _PATTERNS:
            if plural and pred in _SINGULAR_ONLY:
                continue
            m = pattern.search(ms)
            if not m:
                continue
            groups = {k: v for k, v in m.groupdict().items() if v}
            value = next((groups[g] for g in ("v", "v2", "v3", "v4", "v5", "v6") if g in groups), "")
            ftype = _FACT_TYPES[pred]
            if pred == "name":
                if value.split()[0] in _NOT_NAMES or value.lower() == name.lower():
                    continue
                add("name", value, ftype, 0.9, f"{poss} name is {value}.")
            elif pred == "preference":
                value = _clause(value)
                if len(_content_words(value)) == 0:
                    continue
                pol = _POLARITY.get(groups["pol"].lower(), groups["pol"].lower())
                add(f"preference:{_key(value)}", pol, ftype, 0.8, f"{name} {pol} {value}.")
            elif pred in ("favorite", "favorite_rev"):
                cat_words = (groups.get("cat") or "thing").strip()
                cat = _key(cat_words, 3)
                val = _clause(value, 8)
                if pred == "favorite_rev" and len(val.split()) > 5:
                    continue
                add(f"favorite {cat}", val, ftype, 0.85, f"{poss} favorite {cat_words} is {val}.")
            elif pred == "allergy":
                neg = bool(groups.get("neg"))
                add(f"allergic_to:{_key(value)}", "no" if neg else "yes", ftype, 0.9,
                    f"{name} is {'not ' if neg else ''}allergic to {_clause(value, 8)}.")  # fmt: skip
            elif pred == "partner":
                rel = groups["rel"].lower().replace("é", "e")
                add(rel, value or "has one", ftype, 0.8,
                    f"{poss} {rel} is {value}." if value else f"{name} has a {rel}.")  # fmt: skip
            elif pred == "relation":
                add("has", f"{groups['rel'].lower()} {value}", ftype, 0.75,
                    f"{name} has {_article(groups['rel'])} {groups['rel'].lower()} named {value}.")  # fmt: skip
            elif pred in ("moved_to", "lives_in", "from"):
                place = re.split(r" (?:with|for|to|because|and|where|when|after) ", _clause(value, 6))[0]
                if pred == "from":
                    add("from", place, ftype, 0.85, f"{name} is from {place}.")
                else:
                    add("lives_in", place, ftype, 0.85, f"{name} lives in {place}.")
            elif pred == "job_status":
                status = {"lost": "unemployed", "quit": "quit job", "left": "left job"}.get(
                    value.lower(), value.lower())  # fmt: skip
                add(
                    "job_status",
                    status,
                    ftype,
                    0.8,
                    f"{name} {_JOB_STATUS_TEXT.get(status, 'is ' + status)}.",
                )
            elif pred == "plans":
                value = _clause(value)
                if len(_content_words(value)) < 1:
                    continue
                add("plans", value, ftype, 0.6, f"{name} plans to {value}.")
            else:
                # "a nurse and start night shifts": the attribute ends where a second verb begins.
                value = re.split(rf" (?:and|but|or) (?=(?:{'|'.join(_COORD_VERBS)})\b)", value)[0]
                val = _clause(value, 8)
                add(pred, val, ftype, 0.85, _aspect_text(pred, val, name))
        if not facts and not enough:
            return []
        if plural and not facts and not _has_event_verb(s) and not focused:
            return []  # "we should hang out": small talk unless it states something typed or done
        if not facts:
            m = _PAST_EVENT.search(ms)
            if m and len(_content_words(m.group("rest") or "")) >= 1:
                add("did", _clause(f"{m.group('verb')}{m.group('rest')}", 14), "event", 0.6)
        if not facts:
            m = _HAVE_STATE.search(ms)
            if m:
                add("has" if m.group("what") is None else "said", _clause(ms, 14), "profile", 0.5)
        if not facts and (first_person or focused) and len(_content_words(s)) >= self.min_content_words + 1:
            add("said", _clause(ms, 16), "other", 0.4)
        # One text per fact: the first fact (the name aside) keeps the sentence, the rest state
        # their own aspect. The name always reads as a name ("The user is Dana" is ambiguous).
        keeps = next((i for i, f in enumerate(facts) if f.predicate != "name"), None)
        for i, (fact, aspect) in enumerate(zip(facts, aspects, strict=True)):
            if i != keeps and aspect:
                dated = resolved is not None and fact.predicate in _DATED_ASPECTS
                fact.text = f"{aspect.rstrip('.')} ({resolved.phrase})." if dated and resolved else aspect
                fact.text = fact.text[0].upper() + fact.text[1:]
        return facts


_SINGULAR_ONLY = frozenset({"name", "age", "partner"})
_DATED_ASPECTS = frozenset({"lives_in", "job_status", "plans", "marital_status", "works_at"})
_JOB_STATUS_TEXT = {"unemployed": "is unemployed", "quit job": "quit their job", "left job": "left their job",
                    "laid off": "was laid off", "fired": "was fired", "retired": "is retired"}  # fmt: skip
# "I'm <Capitalised word>" is a name unless the word is a nationality, faith or similar.
_NOT_NAMES = frozenset(
    [
        "American",
        "British",
        "English",
        "Scottish",
        "Welsh",
        "Irish",
        "French",
        "German",
        "Dutch",
        "Swiss",
        "Italian",
        "Spanish",
        "Portuguese",
        "Brazilian",
        "Mexican",
        "Canadian",
        "Australian",
        "Chinese",
        "Japanese",
        "Korean",
        "Indian",
        "Pakistani",
        "Russian",
        "Polish",
        "Ukrainian",
        "Greek",
        "Turkish",
        "Swedish",
        "Norwegian",
        "Danish",
        "Finnish",
        "African",
        "Nigerian",
        "Kenyan",
        "Egyptian",
        "Moroccan",
        "Israeli",
        "Iranian",
        "Arab",
        "Asian",
        "European",
        "Latino",
        "Latina",
        "Hispanic",
        "Filipino",
        "Vietnamese",
        "Thai",
        "Catholic",
        "Christian",
        "Jewish",
        "Muslim",
        "Buddhist",
        "Hindu",
        "Atheist",
        "Vegan",
        "Vegetarian",
        "Gay",
        "Lesbian",
        "Bi",
        "Trans",
        "Not",
        "Just",
        "So",
        "Really",
        "Very",
        "Also",
        "Still",
        "Here",
        "Back",
        "Home",
        "Fine",
        "Good",
        "Okay",
        "Ok",
        "Sorry",
        "Glad",
        "Happy",
        "Sure",
    ]
)


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def _aspect_text(pred: str, value: str, name: str) -> str | None:
    """A standalone sentence stating one typed attribute (see :meth:`RuleExtractor.extract_sentence`)."""
    templates = {
        "age": f"{name} is {value} years old.",
        "works_as": f"{name} works as {_article(value)} {value}.",
        "works_at": f"{name} works at {value}.",
        "studies": f"{name} studies {value}.",
        "diet": f"{name} is {value}.",
        "marital_status": f"{name} is {value}.",
        "children": f"{name} has {value} children.",
        "pet": f"{name} has {_article(value)} {value}.",
    }
    return templates.get(pred)


def _singular(s: str) -> str:
    """Singular form of a plural statement, for matching patterns only: "we" -> "I", "our" -> "my"."""
    for pat, rep in ((r"\bwe're\b", "I'm"), (r"\bwe are\b", "I am"), (r"\bwe've\b", "I've"),
                     (r"\bwe'll\b", "I'll"), (r"\bwe'd\b", "I'd"), (r"\bwe were\b", "I was"), (r"\bwe\b", "I"),
                     (r"\bours\b", "mine"), (r"\bour\b", "my"), (r"\bourselves\b", "myself"),
                     (r"\bus\b", "me")):  # fmt: skip
        s = re.sub(pat, rep, s, flags=re.I)
    return s


def _has_event_verb(s: str) -> bool:
    return bool(re.search(r"\bwe (?:went|visited|got|bought|took|had|did|made|adopted|moved|started|"
                          r"traveled|travelled|camped|hiked|celebrated|watched)\b", s, re.I))  # fmt: skip


def _third_person_subject(s: str, role: str) -> tuple[str, str, str] | None:
    """For "Caroline moved to Berlin" (an observation), ``(subject, name, first-person text)``."""
    m = re.match(r"^(?:The user|User|([A-Z][a-z]+))(?:'s)?\b", s)
    if m is None:
        return None
    name = m.group(1) or "The user"
    if name in _NOT_ENTITY or name.lower() in _STOP:
        return None
    if m.group(1) is not None and name.lower() != role.strip().lower():
        # A capitalised first word that is not the speaker's name ("Call me Dana", "Lost my
        # job") is a subject only in observation-like text.
        if not re.match(rf"^{name}(?:'s [a-z]+(?: [a-z]+)? (?:is|are|was|were)\b| (?:is|was|has|had|likes|loves|lives|moved|works|plans|went|wants|enjoys|"
                        rf"prefers|hates|dislikes|got|started|lost)\b)", s):  # fmt: skip
            return None
    elif m.group(1) is not None and not re.match(rf"^{name}(?:'s)? [a-z]", s):
        return None
    subject = "user" if name == "The user" else name.lower()
    rest = s[m.end() :]
    if rest.startswith("'s "):
        first = "My " + rest[3:]
    else:
        words = rest.strip().split(" ", 1)
        verb = words[0] if words else ""
        base = {"is": "am", "has": "have", "does": "do", "goes": "go", "was": "was"}.get(verb)
        if base is None:
            if verb.endswith("ies"):
                base = verb[:-3] + "y"
            elif verb.endswith(("ches", "shes", "sses", "xes", "oes")):
                base = verb[:-2]
            elif verb.endswith("s") and not verb.endswith("ss"):
                base = verb[:-1]
            else:
                base = verb
        first = f"I {base} {words[1] if len(words) > 1 else ''}".strip()
    first = re.sub(r"\b(?:her|his|their)\b", "my", first)
    return subject, name, first


def _sentences(text: str) -> list[str]:
    out = []
    for line in text.splitlines():
        line = re.sub(r"^\s*\w+(?: \w+)?:\s+", "", line)  # "user: ..." transcript labels
        for s in split_sentences(line):
            # Long run-on sentences: split on " - " and "; " too.
            for part in re.split(r" - |; | — ", s):
                # "I live in Paris and I love sushi": one fact per first-person clause.
                out.extend(c.strip() for c in _CLAUSE_SPLIT.split(part) if c.strip())
    return out


_CLAUSE_SPLIT = re.compile(r",? (?:and|but|so|plus) (?=(?:I|I'm|I've|I'll|I'd|my)\b)")
_TIME_TAIL = re.compile(
    r"\s+(?:(?:last|next|this|the past) (?:week|weekend|month|year|night|\w+day)|yesterday|today|tonight|"
    r"tomorrow|recently|now|again|(?:a|an|one|two|three|few|couple of|\d+) \w+ ago|"
    r"(?:in|on|since) (?:\d{4}|\w+ \d{4}|\d{1,2} \w+ \d{4}))\b.*$",
    re.I,
)


def _focus_terms(custom_instructions: str | None) -> list[str]:
    if not custom_instructions:
        return []
    m = re.search(r"focus on (.+)", custom_instructions, re.I)
    if not m:
        return []
    return [w.lower() for w in re.findall(r"[a-zA-Z]{3,}", m.group(1)) if w.lower() not in _STOP]
