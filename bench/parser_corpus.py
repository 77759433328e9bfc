#!/usr/bin/env python3
"""Compares newsriver's parse stage with Python feedparser on a corpus of odd feeds.

The corpus is feedparser's own test documents (its source distribution from
PyPI, fetched with pip into a cache folder). For every document feedparser
reads without complaint (bozo false) and finds a feed in (a title or
entries), newsriver must read it too, with as many entries. Prints a summary
and the failures; exits 1 if any document is lost or any parse panicked.

    python3 bench/parser_corpus.py [--cache DIR] [--show N]
"""
import argparse, glob, json, os, subprocess, sys, tarfile, tempfile

def corpus(cache):
    os.makedirs(cache, exist_ok=True)
    tars = glob.glob(os.path.join(cache, "feedparser-*.tar.gz"))
    if not tars:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                        "--no-binary", ":all:", "-d", cache, "feedparser==6.0.14"], check=True)
        tars = glob.glob(os.path.join(cache, "feedparser-*.tar.gz"))
    root = os.path.join(cache, "src")
    if not os.path.isdir(root):
        with tarfile.open(tars[0]) as t:
            t.extractall(root, filter="data")
    tests = glob.glob(os.path.join(root, "feedparser-*", "tests"))[0]
    files = []
    for sub in ("wellformed", "illformed", "encoding", "entities"):
        for dirpath, _, names in os.walk(os.path.join(tests, sub)):
            files += [os.path.join(dirpath, n) for n in names if n.endswith((".xml", ".rdf", ".json"))]
    return sorted(files)

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "newsriver-parser-corpus"))
    ap.add_argument("--show", type=int, default=40)
    ap.add_argument("--binary", default=None, help="the parse_corpus example (built if absent)")
    args = ap.parse_args()
    import feedparser
    files = corpus(args.cache)
    readable = {}
    for f in files:
        with open(f, "rb") as fh:
            data = fh.read()
        d = feedparser.parse(data)
        if d.bozo or not (d.feed.get("title") or d.entries):
            continue
        readable[f] = d
    binary = args.binary
    if binary is None:
        subprocess.run(["cargo", "build", "--quiet", "--release", "--example", "parse_corpus"], check=True)
        binary = os.path.join("target", "release", "examples", "parse_corpus")
    out = subprocess.run([binary], input="\n".join(readable) + "\n", capture_output=True, text=True, check=True)
    results = {}
    for line in out.stdout.splitlines():
        r = json.loads(line)
        results[r["path"]] = r
    lost, fewer, panics, recovered, slow, retitled = [], [], [], 0, [], []
    import html, re
    # Titles compared as text: feedparser keeps a title's markup and
    # entities, newsriver's titles are plain text.
    norm = lambda t: " ".join(html.unescape(re.sub(r"<[^>]*>", "", t or "")).split())
    for f, d in readable.items():
        r = results.get(f, {"error": "no output"})
        if r.get("panic"):
            panics.append(f)
        elif "error" in r:
            lost.append((f, r["error"]))
        else:
            if len(r["entries"]) < len(d.entries):
                fewer.append((f, len(d.entries), len(r["entries"])))
            if r.get("warnings"):
                recovered += 1
            # Same entries: the titles, in order, where both have one.
            ours = [e.get("title") or "" for e in r["entries"]]
            theirs = [norm(e.get("title")) for e in d.entries]
            ours = [" ".join(t.split()) for t in ours]
            if any(a and b and a != b for a, b in zip(ours, theirs)):
                retitled.append((f, theirs[:2], ours[:2]))
        if r.get("micros", 0) > 1_000_000:
            slow.append(f)
    n = len(readable)
    print(f"corpus: {len(files)} documents, {n} read by feedparser without complaint")
    print(f"newsriver: {n - len(lost) - len(panics)} read ({recovered} after recovery), "
          f"{len(lost)} rejected ({100.0 * len(lost) / max(n, 1):.1f} %), {len(fewer)} with fewer entries, "
          f"{len(panics)} panics, {len(slow)} over 1 s; "
          f"{len(retitled)} with an entry title that differs from feedparser's")
    short = lambda f: f.split("/tests/")[-1]
    for f, e in lost[: args.show]:
        print(f"  rejected {short(f)}: {e[:160]}")
    for f, a, b in fewer[: args.show]:
        print(f"  fewer    {short(f)}: feedparser {a}, newsriver {b}")
    for f, a, b in retitled[: args.show]:
        print(f"  titles   {short(f)}: feedparser {a}, newsriver {b}")
    for f in panics:
        print(f"  PANIC    {short(f)}")
    sys.exit(1 if lost or panics or fewer else 0)

if __name__ == "__main__":
    main()
