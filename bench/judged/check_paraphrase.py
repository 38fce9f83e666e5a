"""Checks that each paraphrase query shares no content word with its note (bench/judged/paraphrase.json)."""
import json, re, sys

STOP = set("""a an the and or but if of to in on at by for with from into onto over under as is are was were be been being
do does did doing have has had having it its this that these those there here what which who whom whose when where why how
we our us you your they their them he she his her i me my not no nor never so than then too very can could should would may
might must will shall just only also each every all any some one two more most other such own same again once before after
about against between through during above below up down out off further get got make made let s t""".split())

def fold(w):
    for suf in ("ing", "ed", "es", "s"):
        if w.endswith(suf) and len(w) - len(suf) >= 3:
            return w[: -len(suf)]
    return w

def words(text):
    return {fold(w) for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in STOP}

def main(path):
    d = json.load(open(path))
    notes = {n["id"]: n for n in d["notes"]}
    bad = 0
    for q in d["queries"]:
        n = notes[q["note"]]
        shared = words(q["query"]) & words(n["title"] + " " + n["body"])
        if shared:
            bad += 1
            print(f"{q['note']}: shares {sorted(shared)}")
    print(f"{len(d['queries'])} queries, {bad} sharing a content word")
    return 1 if bad else 0

if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "bench/judged/paraphrase.json"))
