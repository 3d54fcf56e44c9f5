"""The hand-written class map of debian_sounds: file-name and folder patterns -> class.

Each rule names a package, a regular expression that must match a file's whole path
inside the package (bundled files as ``<bundle>.rcc!<path inside>``), the class, and
where the file's *voice* and *words* come from:

- ``voice``: a template over the pattern's named groups (``"{pack}"``) for sounds that
  carry a voice or a player (a language's speaker, a voice pack, a game unit's voice, a
  drum kit): every clip of one voice lands in one split, so a test voice is never heard
  in training. Variants that may be the same speaker count as one voice: a voice pack
  and its localisations (hedgewars ``Default`` and ``Default_pl``), a language and its
  scripts (ktuberling ``sr`` and ``sr@latin``). ``None``: the recording itself is the
  unit of the split.
- ``words``: the pattern's ``words`` group, spelled out by ``spell_words`` (the clip's own
  words for its caption: "egypt_camel" -> "camel", "Comeonthen" -> "come on then").
- ``picture``: a template for the path (in the package) of a picture of the sound's
  source, when the package ships one.

The first rule that matches decides; a file that no rule matches is left out, so a
file whose class is unclear from its name is never guessed. Rules are tried in order.
Captions: every class has several phrasings; ``{words}`` phrasings are used only for
clips whose name has words, ``{language}`` ones only for speech with a known language.
"""
import re
import zlib
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np


@dataclass(frozen=True)
class SoundClass:
    """One class: its name (the label) and caption phrasings."""

    name: str
    captions: Tuple[str, ...]
    word_captions: Tuple[str, ...] = ()


CLASSES: Tuple[SoundClass, ...] = (
    SoundClass("speech", ("a person speaking", "someone says a word", "a voice saying a single word", "a spoken word"),
               ('a voice saying the {language} word for "{words}"', 'someone says "{words}" in {language}', 'a person speaking {language}: "{words}"')),
    SoundClass("shouting", ("a person shouting", "someone yells a short phrase", "an excited voice calling out", "a loud exclamation"),
               ('someone shouts "{words}"', 'a voice yelling "{words}"', 'a person calls out "{words}"')),
    SoundClass("singing", ("a person singing", "someone sings a short phrase", "a sung melody by a voice", "a singing voice"),
               ('someone sings "{words}"', 'a voice singing "{words}"')),
    SoundClass("laughter", ("a person laughing", "someone laughs out loud", "laughter", "a burst of laughing")),
    SoundClass("cough", ("a person coughing", "someone coughs", "coughing", "a sick cough")),
    SoundClass("pain cry", ("a person crying out in pain", "someone groans as if hurt", "a cry of pain", "a grunt of someone being hit")),
    SoundClass("dog", ("a dog barking", "a dog or wolf growling", "a barking dog", "a wolf snarls"), ("the sound of a {words}",)),
    SoundClass("horse", ("a horse neighing", "horse hooves galloping", "a horse", "the sound of a horse")),
    SoundClass("bird", ("birds chirping", "a bird singing", "birdsong", "birds calling outdoors"), ("the call of a {words}", "a {words} calling")),
    SoundClass("farm animal", ("a farm animal calling", "an animal on the farm", "a cow, pig or sheep", "animal noises from a farm"),
               ("a {words} making its sound", "the sound of a {words}")),
    SoundClass("water", ("running water", "water splashing", "a stream of water", "water flowing and dripping"), ("the sound of {words}",)),
    SoundClass("fire", ("a fire crackling", "flames burning", "a crackling campfire", "burning wood")),
    SoundClass("crowd", ("a crowd cheering", "people applauding", "a cheering audience", "the noise of a large crowd")),
    SoundClass("road traffic", ("cars driving by", "road traffic", "a car engine", "vehicles on a busy street")),
    SoundClass("train", ("a train passing", "a train on the rails", "a locomotive", "a railway train rumbling")),
    SoundClass("machinery", ("machines running", "factory noise", "industrial machinery", "a mechanical hum and clatter")),
    SoundClass("explosion", ("an explosion", "a loud blast", "something exploding", "a bang of an explosion")),
    SoundClass("gunshot", ("a gunshot", "a gun firing", "shots fired", "the bang of a gun")),
    SoundClass("hammering", ("hammering on metal", "a hammer striking", "a blacksmith at work", "metal being hammered")),
    SoundClass("swoosh", ("a swoosh", "something swinging through the air", "a whoosh", "a fast swish")),
    SoundClass("bell", ("a bell ringing", "a bell chiming", "a gong struck", "chimes ringing")),
    SoundClass("alarm", ("an alarm ringing", "a phone ringing", "an alarm clock going off", "a ringing telephone")),
    SoundClass("keyboard typing", ("typing on a keyboard", "a key being pressed", "clicking keyboard keys", "a mechanical keyboard")),
    SoundClass("kick drum", ("a kick drum", "a bass drum hit", "a thump of a kick drum", "a bass drum"), ("a {words} hit",)),
    SoundClass("snare drum", ("a snare drum hit", "a snare drum", "a crack of a snare", "a drummer hitting the snare"), ("a {words} hit",)),
    SoundClass("hi-hat", ("a hi-hat", "a hi-hat cymbal tapped", "a closed or open hi-hat", "a hi-hat chick"), ("a {words} hit",)),
    SoundClass("cymbal", ("a cymbal crash", "a ride cymbal", "a cymbal struck", "a crash cymbal ringing"), ("a {words} hit",)),
    SoundClass("tom drum", ("a tom drum", "a tom-tom hit", "a drum tom", "a floor tom"), ("a {words} hit",)),
    SoundClass("hand clap", ("a hand clap", "hands clapping", "a clap", "someone clapping once")),
    SoundClass("hand percussion", ("hand percussion", "a shaker or tambourine", "small percussion instruments", "a cowbell or maracas"),
               ("a {words}", "someone playing a {words}")),
    SoundClass("keyboard instrument", ("a piano", "an organ playing", "keys of a piano or organ", "a keyboard instrument"),
               ("a {words} playing", "someone playing the {words}")),
    SoundClass("plucked strings", ("a guitar", "plucked strings", "a guitar being strummed", "a stringed instrument plucked"),
               ("a {words} playing", "someone playing the {words}")),
    SoundClass("bowed strings", ("a violin", "a bowed string instrument", "a cello playing", "strings played with a bow"),
               ("a {words} playing", "someone playing the {words}")),
    SoundClass("brass", ("a trumpet", "a brass instrument", "a horn blowing", "a brass horn call"), ("a {words} playing", "someone playing the {words}")),
    SoundClass("woodwind", ("a flute", "a woodwind instrument", "a clarinet or saxophone", "someone blowing a flute"),
               ("a {words} playing", "someone playing the {words}")),
    SoundClass("music", ("music playing", "a piece of music", "a tune", "background music"), ("{words} music",)),
)
LABELS: Tuple[str, ...] = tuple(c.name for c in CLASSES)
BY_NAME: Dict[str, SoundClass] = {c.name: c for c in CLASSES}


@dataclass(frozen=True)
class Rule:
    """One pattern of the class map (see the module docstring)."""

    package: str
    pattern: str
    label: str
    voice: Optional[str] = None
    picture: Optional[str] = None


KT = r"usr/share/ktuberling/sounds"
HW = r"usr/share/games/hedgewars/Data"
WN = r"usr/share/games/wesnoth/1\.16"
LC = r"usr/share/games/lincity-ng/sounds"
FC = r"usr/share/games/freeciv/stdsounds"
LM = r"usr/share/lmms/samples"
GC_RCC = r"usr/share/gcompris-qt/rcc/(?:\w|-)+\.rcc!gcompris/src/activities"
HG = r"usr/share/hydrogen/data/drumkits/(?P<kit>GMRockKit)"  # TR808EmulationKit: a synthesiser, not recorded

RULES: Tuple[Rule, ...] = (
    # --- voices -------------------------------------------------------------
    # KTuberling: one speaker per language. The Tux-themed names (Frier-Tux, tux-zzz) may be
    # effects or words: left out. Nine languages name their files in English ("egypt_camel"),
    # the others in their own words ("egypte_chameau"): those are the clip's words as spoken.
    Rule("ktuberling-data", KT + r"/[\w@]+/[\w-]*[Tt]ux[\w-]*\.(?:ogg|wav)", ""),
    Rule("ktuberling-data", KT + r"/(?P<lang>ca|de|el|en|gl|lt|ru|sl|uk)(?:@\w+)?/(?:(?:egypt|moon|pizzeria|tv)_)?(?P<words>[\w-]+)\.(?:ogg|wav)", "speech", voice="{lang}"),
    Rule("ktuberling-data", KT + r"/(?P<lang>[a-z]+)(?:@\w+)?/(?:(?:egypte?|moon|lune|pizzeria|tv)_)?(?P<native>[\w-]+)\.(?:ogg|wav)", "speech", voice="{lang}"),
    # The Robot pack is a vocoder, not a voice; the Singer sings every line (one voice: split by recording).
    Rule("hedgewars-data", HW + r"/Sounds/voices/Robot/.*", ""),
    Rule("hedgewars-data", HW + r"/Sounds/voices/Singer/(?:Laugh|Ow\d|Ooff\d|Ouch|Jump\d|Firepunch\d|Hmm|Poison\w+)\.ogg", ""),
    Rule("hedgewars-data", HW + r"/Sounds/voices/Singer/(?P<words>[\w-]+)\.ogg", "singing"),
    Rule("hedgewars-data", HW + r"/Sounds/voices/(?P<pack>[A-Za-z]+)(?:_[a-z]+)?/Laugh\.ogg", "laughter", voice="hedgewars:{pack}"),
    Rule("hedgewars-data", HW + r"/Sounds/voices/(?P<pack>[A-Za-z]+)(?:_[a-z]+)?/PoisonCough\.ogg", "cough", voice="hedgewars:{pack}"),
    Rule("hedgewars-data", HW + r"/Sounds/voices/(?P<pack>[A-Za-z]+)(?:_[a-z]+)?/(?:Ow\d|Ouch|Ooff\d|PoisonMoan)\.ogg", "pain cry", voice="hedgewars:{pack}"),
    # Grunts of jumps and punches, "Hmm": neither words nor a clear class.
    Rule("hedgewars-data", HW + r"/Sounds/voices/\w+/(?:Jump\d|Firepunch\d|Hmm)\.ogg", ""),
    Rule("hedgewars-data", HW + r"/Sounds/voices/(?P<pack>[A-Za-z]+)(?:_[a-z]+)?/(?P<words>[\w-]+)\.ogg", "shouting", voice="hedgewars:{pack}"),
    Rule("wesnoth-1.16-data", WN + r"/data/core/sounds/(?P<unit>human|human-female|human-old|dwarf|elf)-(?:hit|die)(?:-\d)?\.ogg", "pain cry", voice="wesnoth:{unit}"),
    Rule("wesnoth-1.16-data", WN + r"/data/core/sounds/(?P<unit>witches|dwarf)-laugh\.wav", "laughter", voice="wesnoth:{unit}"),
    # --- animals --------------------------------------------------------------
    Rule("wesnoth-1.16-data", WN + r"/data/core/sounds/wolf-(?:growl|hit|die)-\d\.ogg", "dog", voice="wesnoth:wolf"),
    Rule("gcompris-qt-data", GC_RCC + r"/explore_farm_animals/resource/animals/(?P<words>dog)\.ogg", "dog", picture="{bundle}!gcompris/src/activities/explore_farm_animals/resource/animals/dog.webp"),
    Rule("gcompris-qt-data", GC_RCC + r"/memory-sound/resource/LRBark_\d_LA_cut\.ogg", "dog"),
    Rule("wesnoth-1.16-data", WN + r"/data/core/sounds/horse-(?:hit-\d|die|canter)\.(?:ogg|wav)", "horse"),
    Rule("gcompris-qt-data", GC_RCC + r"/explore_farm_animals/resource/animals/horse\.ogg", "horse", picture="{bundle}!gcompris/src/activities/explore_farm_animals/resource/animals/horse.webp"),
    Rule("wesnoth-1.16-data", WN + r"/data/core/sounds/ambient/birds\d\.ogg", "bird"),
    Rule("gcompris-qt-data", GC_RCC + r"/explore_farm_animals/resource/animals/(?P<words>owl|duck)\.ogg", "bird", picture="{bundle}!gcompris/src/activities/explore_farm_animals/resource/animals/{words}.webp"),
    Rule("gcompris-qt-data", GC_RCC + r"/explore_farm_animals/resource/animals/chickens\.ogg", "bird", picture="{bundle}!gcompris/src/activities/explore_farm_animals/resource/animals/chicken.webp"),
    Rule("gcompris-qt-data", GC_RCC + r"/explore_farm_animals/resource/animals/(?P<words>cow|pig|sheep|cat)\.ogg", "farm animal", picture="{bundle}!gcompris/src/activities/explore_farm_animals/resource/animals/{words}.webp"),
    # --- nature ---------------------------------------------------------------
    Rule("lincity-ng-data", LC + r"/Water\d\.wav", "water"),
    Rule("gcompris-qt-data", GC_RCC + r"/memory-sound/resource/LRRain_in_garden_01_LA_cut\.ogg", "water"),
    Rule("gcompris-qt-data", GC_RCC + r"/canal_lock/resource/water_fill\.wav", "water"),
    Rule("hedgewars-data", HW + r"/Sounds/(?:splash|Droplet\d)\.ogg", "water"),
    Rule("lincity-ng-data", LC + r"/Fire(?:\d|Wasteland\d)\.wav", "fire"),
    Rule("wesnoth-1.16-data", WN + r"/data/core/sounds/ambient/campfire\.ogg", "fire"),
    # --- people, places, machines --------------------------------------------
    Rule("lincity-ng-data", LC + r"/SportsCroud\d\.wav", "crowd"),
    Rule("gcompris-qt-data", GC_RCC + r"/memory-sound/resource/LRApplauses_1_LA_cut\.ogg", "crowd"),
    Rule("lmms-common", LM + r"/misc/(?:applause01|raving_crowd01)\.ogg", "crowd"),
    Rule("lincity-ng-data", LC + r"/Trafic(?:High|Low)\d\.wav", "road traffic"),
    Rule("gcompris-qt-data", GC_RCC + r"/memory-sound/resource/LRStartAndStopCarEngine1LACut\.ogg", "road traffic"),
    Rule("lincity-ng-data", LC + r"/RailTrain\d\.wav", "train"),
    Rule("gcompris-qt-data", GC_RCC + r"/memory-sound/resource/LRTrain_slowing_down_01_LA_cut\.ogg", "train"),
    Rule("gcompris-qt-data", GC_RCC + r"/railroad/resource/sounds/train\.wav", "train"),
    Rule("lincity-ng-data", LC + r"/(?:IndustryHigh|IndustryLight|Mill|CoalMine|OreMine)\d\.wav", "machinery"),
    Rule("gcompris-qt-data", GC_RCC + r"/memory-sound/resource/LRFactory_noise_0\d_LA\.ogg", "machinery"),
    Rule("hedgewars-data", HW + r"/Sounds/explosion\.ogg", "explosion"),
    Rule("wesnoth-1.16-data", WN + r"/data/core/sounds/explosion\.ogg", "explosion"),
    Rule("lincity-ng-data", LC + r"/RocketExplosion\d\.wav", "explosion"),
    Rule("lmms-common", LM + r"/effects/explode01\.ogg", "explosion"),
    Rule("freeciv-data", FC + r"/(?:Lrg|Sml)Expl\.ogg", "explosion"),
    Rule("tuxmath-data", r"usr/share/tuxmath/sounds/explosion\.wav", "explosion"),
    Rule("freeciv-data", FC + r"/Mg(?:Bar\d|Heavy)\.ogg", "gunshot"),
    Rule("freeciv-data", FC + r"/Splash\.ogg", "water"),
    Rule("tuxmath-data", r"usr/share/tuxmath/sounds/alarm\.wav", "alarm"),
    Rule("tuxmath-data", r"usr/share/tuxmath/sounds/towerclock\.wav", "bell"),
    Rule("hedgewars-data", HW + r"/Sounds/(?:gun|shotgunfire|minigun)\.ogg", "gunshot"),
    Rule("wesnoth-1.16-data", WN + r"/data/core/sounds/(?:gunshot\.wav|thunderstick(?:-miss)?\.ogg)", "gunshot"),
    Rule("lincity-ng-data", LC + r"/Blacksmith\d\.wav", "hammering"),
    Rule("hedgewars-data", HW + r"/Sounds/hammer\.ogg", "hammering"),
    Rule("wesnoth-1.16-data", WN + r"/data/core/sounds/(?:miss-\d|dagger-swish\.wav|(?:club|staff|mace|spear|flail)-miss)(?:\.ogg)?", "swoosh"),
    Rule("sound-theme-freedesktop", r"usr/share/sounds/freedesktop/stereo/bell\.oga", "bell"),
    Rule("wesnoth-1.16-data", WN + r"/sounds/bell\.wav", "bell"),
    Rule("gcompris-qt-data", GC_RCC + r"/memory-sound/resource/LRBuddhist_gong_05_LA\.ogg", "bell"),
    Rule("lmms-common", LM + r"/effects/wind_chimes01\.ogg", "bell"),
    Rule("sound-theme-freedesktop", r"usr/share/sounds/freedesktop/stereo/(?:alarm-clock-elapsed|phone-incoming-call)\.oga", "alarm"),
    Rule("bucklespring-data", r"usr/share/buckle/wav/[0-9a-f]+-[01]\.wav", "keyboard typing"),
    # --- drums: a real kit (hydrogen's GMRockKit) is a voice, so a test kit is never heard
    # in training; LMMS's drum folder and GCompris's instruments are collections of
    # single samples from many sources (kick_hiphop01, bassdrum_acoustic01, ...): each
    # sample is its own recording.
    Rule("lmms-common", LM + r"/drums/(?P<words>kick|bassdrum)\w*\.ogg", "kick drum"),
    Rule("lmms-common", LM + r"/drums/snare_rim01\.ogg", ""),
    Rule("lmms-common", LM + r"/drums/(?P<words>snare)\w*\.ogg", "snare drum"),
    Rule("lmms-common", LM + r"/drums/hihat_\w+\.ogg", "hi-hat"),
    Rule("lmms-common", LM + r"/drums/(?P<words>crash|ride)\d+\.ogg", "cymbal"),
    Rule("lmms-common", LM + r"/drums/tom\w*\.ogg", "tom drum"),
    Rule("lmms-common", LM + r"/drums/clap\d+\.ogg", "hand clap"),
    Rule("lmms-common", LM + r"/drums/(?P<words>shaker)\d+\.ogg", "hand percussion"),
    Rule("hydrogen-data", HG + r"/(?P<words>Kick)-\w+\.wav", "kick drum", voice="hydrogen:{kit}"),
    Rule("hydrogen-data", HG + r"/(?P<words>Snare)(?:Rimshot)?-\w+\.wav", "snare drum", voice="hydrogen:{kit}"),
    Rule("hydrogen-data", HG + r"/Hat(?:Closed|Open|Pedal|SemiOpen)-\w+\.wav", "hi-hat", voice="hydrogen:{kit}"),
    Rule("hydrogen-data", HG + r"/(?:24)?(?P<words>Ride|Crash|Splash)(?:-\w+|-\d)\.wav", "cymbal", voice="hydrogen:{kit}"),
    Rule("hydrogen-data", HG + r"/Tom(?:1|2|Floor)-\w+\.wav", "tom drum", voice="hydrogen:{kit}"),
    Rule("hydrogen-data", HG + r"/HandClap\.wav", "hand clap", voice="hydrogen:{kit}"),
    Rule("hydrogen-data", HG + r"/(?P<words>Cowbell)-\w+\.wav", "hand percussion", voice="hydrogen:{kit}"),
    Rule("gcompris-qt-data", GC_RCC + r"/instruments/resource/(?P<words>snare_drum)\.ogg", "snare drum"),
    Rule("gcompris-qt-data", GC_RCC + r"/instruments/resource/(?P<words>cymbal)\.ogg", "cymbal"),
    Rule("gcompris-qt-data", GC_RCC + r"/instruments/resource/(?P<words>tambourine|maracas|castanets|triangle|bongo)\.ogg", "hand percussion"),
    # --- instruments ------------------------------------------------------------
    Rule("lmms-common", LM + r"/instruments/(?P<words>piano|e_piano_accord|church_organ|e_organ|harpsichord)\d+\.ogg", "keyboard instrument"),
    Rule("gcompris-qt-data", GC_RCC + r"/instruments/resource/(?P<words>piano|organ|accordion)\.ogg", "keyboard instrument"),
    Rule("lmms-common", LM + r"/instruments/(?P<words>steel_guitar|bassslap)\w*\d+\.ogg", "plucked strings"),
    Rule("lmms-common", LM + r"/latin/latin_(?P<words>guitar)\d+\.ogg", "plucked strings"),
    Rule("gcompris-qt-data", GC_RCC + r"/instruments/resource/(?P<words>guitar|electric_guitar|banjo|harp)\.ogg", "plucked strings"),
    Rule("gcompris-qt-data", GC_RCC + r"/memory-sound/resource/guitar_(?:son\d|melody)\.ogg", "plucked strings"),
    Rule("lmms-common", LM + r"/instruments/(?P<words>cello|violin)\w*\d+\.ogg", "bowed strings"),
    Rule("gcompris-qt-data", GC_RCC + r"/instruments/resource/(?P<words>violin|cello)\.ogg", "bowed strings"),
    Rule("lmms-common", LM + r"/(?:instruments|latin)/(?:latin_)?(?P<words>trumpet|brass)\d+\.ogg", "brass"),
    Rule("gcompris-qt-data", GC_RCC + r"/instruments/resource/(?P<words>trumpet|horn|tuba|trombone)\.ogg", "brass"),
    Rule("wesnoth-1.16-data", WN + r"/data/core/sounds/horn-signals/horn-\d\.ogg", "brass"),
    Rule("lmms-common", LM + r"/instruments/(?P<words>flute)\d+\.ogg", "woodwind"),
    Rule("gcompris-qt-data", GC_RCC + r"/instruments/resource/(?P<words>flute)_traversiere\.ogg", "woodwind"),
    Rule("gcompris-qt-data", GC_RCC + r"/instruments/resource/(?P<words>clarinet|saxophone|harmonica)\.ogg", "woodwind"),
    Rule("gcompris-qt-data", GC_RCC + r"/explore_world_music/resource/music/(?P<words>\w+)\.ogg", "music"),
    Rule("hedgewars-data", HW + r"/Music/(?P<words>\w+)\.ogg", "music"),
    Rule("lincity-ng-data", r"usr/share/games/lincity-ng/music/default/\d+ - [^/]+\.ogg", "music"),
)
_COMPILED = [(rule, re.compile(rule.pattern)) for rule in RULES]

# Words of file names that are not their own English words.
SPELLING: Dict[str, str] = {
    "comeonthen": "come on then", "cutitout": "cut it out", "enemydown": "enemy down", "firstblood": "first blood",
    "flyaway": "fly away", "gonnagetyou": "gonna get you", "illgetyou": "I'll get you", "justyouwait": "just you wait",
    "leavemealone": "leave me alone", "ohdear": "oh dear", "runaway": "run away", "sameteam": "same team",
    "solong": "so long", "takecover": "take cover", "thisoneismine": "this one is mine", "watchit": "watch it",
    "watchthis": "watch this", "whatthe": "what the", "youllregretthat": "you'll regret that", "byebye": "bye bye",
    "yessir": "yes sir", "uh-oh": "uh oh", "nooo": "no", "broccolli": "broccoli", "sphynx": "sphinx",
    "fallingstar": "falling star", "moonwalker": "moon walker", "palmtree": "palm tree", "e piano accord": "electric piano",
    "e organ": "electric organ", "church organ": "church organ", "bassslap": "slap bass", "steel guitar": "steel guitar",
    "bassdrum": "bass drum", "middleeast": "Middle Eastern", "australia": "Australian", "japan": "Japanese",
    "italy": "Italian", "ireland": "Irish", "beethoven": "Beethoven's", "america": "American", "africa": "African",
    "mexico": "Mexican", "sdmusic": "sudden death", "main theme": "main theme", "olympics sd": "olympic",
}
LANGUAGES: Dict[str, str] = {
    "ca": "Catalan", "da": "Danish", "de": "German", "el": "Greek", "en": "English", "es": "Spanish", "fi": "Finnish",
    "fr": "French", "ga": "Irish", "gl": "Galician", "it": "Italian", "lt": "Lithuanian", "nds": "Low German",
    "nl": "Dutch", "pt": "Portuguese", "ro": "Romanian", "ru": "Russian", "sl": "Slovenian", "sr": "Serbian",
    "sr@ijekavian": "Serbian", "sr@ijekavianlatin": "Serbian", "sr@latin": "Serbian", "sv": "Swedish",
    "uk": "Ukrainian", "wa": "Walloon",
}


@dataclass(frozen=True)
class Match:
    """A file's class and what the map says of it."""

    label: str
    voice: Optional[str]
    words: str
    language: str
    picture: Optional[str]
    native: bool = False  # words in the spoken language (not English)


def spell_words(raw: str) -> str:
    """A file name's words as a caption writes them ("steel_guitar" -> "steel guitar")."""
    text = raw.replace("_", " ").strip().lower()
    return SPELLING.get(text, text)


def classify(package: str, rel: str) -> Optional[Match]:
    """The class of a file of ``package`` at ``rel``; None when no rule gives one."""
    for rule, regex in _COMPILED:
        if rule.package != package:
            continue
        m = regex.fullmatch(rel)
        if m is None:
            continue
        if not rule.label:  # an explicit "left out"
            return None
        groups = {k: v for k, v in m.groupdict().items() if v is not None}
        groups["bundle"] = rel.split("!", 1)[0]
        native = "native" in groups
        words = spell_words(groups["native" if native else "words"]) if native or "words" in groups else ""
        lang = LANGUAGES.get(groups.get("lang", ""), "")
        return Match(
            label=rule.label,
            voice=rule.voice.format(**groups) if rule.voice else None,
            words=words,
            language=lang,
            picture=rule.picture.format(**groups) if rule.picture else None,
            native=native,
        )
    return None


def caption(label: str, words: str, language: str, key: str, seed: int, native: bool = False) -> str:
    """One caption of a clip: a phrasing of its class drawn from (seed, key).

    Phrasings with ``{words}`` (and ``{language}``) join the draw when the clip has them;
    words in the spoken language (``native``) skip the phrasings that translate
    ("the German word for ...").
    """
    cls = BY_NAME[label]
    choices: List[str] = list(cls.captions)
    for template in cls.word_captions:
        if words and ("{language}" not in template or language) and not (native and "word for" in template):
            choices.extend([template] * 2)  # the clip's own words, when it has them, twice as likely
    rng = np.random.default_rng([seed, zlib.crc32(key.encode("utf-8"))])
    return choices[int(rng.integers(len(choices)))].format(words=words, language=language)


def check_rules(labels: Sequence[str] = LABELS) -> None:
    """Every rule names a known class (or "" for left out)."""
    bad = [r.pattern for r in RULES if r.label and r.label not in labels]
    if bad:
        raise ValueError(f"class_map.py: rules with unknown classes: {bad}")


check_rules()
