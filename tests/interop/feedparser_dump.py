"""Reads a feed with Python feedparser and prints what it saw as JSON.

Usage: python3 feedparser_dump.py URL
"""
import json
import sys

import feedparser

d = feedparser.parse(sys.argv[1])
source = lambda e: dict(e.get("source") or {})
print(json.dumps({
    "bozo": bool(d.bozo),
    "bozo_exception": str(d.get("bozo_exception", "")),
    "version": d.version,
    "status": d.get("status"),
    "title": d.feed.get("title"),
    "entries": [
        {
            "id": e.get("id"),
            "title": e.get("title"),
            "link": e.get("link"),
            "author": e.get("author"),
            "published": e.get("published"),
            "source": {
                "title": source(e).get("title"),
                "href": source(e).get("href"),
                "id": source(e).get("id"),
            },
        }
        for e in d.entries
    ],
}, default=str))
