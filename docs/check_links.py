"""Check every relative link in the repository's markdown files: its target exists, and a #anchor
names a heading of the target (or the same) markdown file, as GitHub slugs it.

    python docs/check_links.py [ALLOWED_MISSING_PATH ...]    # from anywhere; exit 1 on a broken link
"""
import os, re, sys, subprocess
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
allow_missing = set(sys.argv[1:])
files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.md"], cwd=root, capture_output=True, text=True).stdout.split()
files = [f for f in files if not f.startswith("benchmarks/results/")]
link_re = re.compile(r"(?<!\!)\[([^\]]*)\]\(([^)\s]+)\)")

def slugs(path):
    out, seen = set(), {}
    inside = False
    for line in open(path, encoding="utf-8"):
        if line.startswith("```"):
            inside = not inside
            continue
        if inside:
            continue
        m = re.match(r"^(#{1,6})\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        text = re.sub(r"`", "", m.group(2))
        text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
        slug = re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out

bad = 0
count = 0
for f in files:
    text = open(os.path.join(root, f), encoding="utf-8").read()
    # drop fenced code blocks
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    for m in link_re.finditer(text):
        target = m.group(2)
        if re.match(r"^[a-z]+:", target):
            continue
        count += 1
        path, _, anchor = target.partition("#")
        full = os.path.normpath(os.path.join(root, os.path.dirname(f), path)) if path else os.path.join(root, f)
        rel = os.path.relpath(full, root)
        if not os.path.exists(full):
            tag = "ALLOWED-MISSING" if rel in allow_missing else "MISSING"
            if tag == "MISSING":
                bad += 1
            print(f"{tag}: {f}: {target}")
            continue
        if anchor:
            if os.path.isdir(full) or not full.endswith(".md"):
                print(f"ANCHOR-ON-NON-MD: {f}: {target}"); bad += 1; continue
            if anchor not in slugs(full):
                print(f"BAD-ANCHOR: {f}: {target}"); bad += 1
print(f"{count} relative links checked, {bad} broken")
sys.exit(1 if bad else 0)
