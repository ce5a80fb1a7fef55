#!/usr/bin/env python3
"""Generate natfeed's embedded demo dataset: LMSYS-Chat-1M-shaped chats with gold feedback labels.

Writes ``<out>/conversations.jsonl`` (valid conversations with deliberately malformed rows mixed in)
and ``<out>/gold_labels.csv`` (``conversation_id,user_turn,category``: one row for every user turn >= 2
of every valid conversation, labelled as in ANNOTATION_GUIDELINES.md). All texts are written for this
project; nothing is copied from a dataset. Stdlib only and seeded, so a run is byte-for-byte repeatable:

    python3 scripts/make_sample.py --out data/raw [--seed 13]

How a conversation is built: the labels of its user turns are drawn first (constrained by what the
previous assistant reply was), each user turn is composed from per-language templates x topics, and the
assistant replies are filled in afterwards so that a reply the user corrects really is the flawed one.
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

# Data tables are kept one entry per line, which reads better than the formatter's layout.
# fmt: off
UR1, UR2, UR3, UR4, UR5 = CATEGORIES = (
    "repeat_or_rephrase",
    "make_aware_with_correction",
    "make_aware_without_correction",
    "ask_for_clarification",
    "positive_feedback",
)
NONE = "none"
UR5_END, UR5_NEW = "UR5_END", "UR5_NEW"  # template keys: bare thanks / thanks + a new question
NEGATIVE_CORRECTABLE = (UR2, UR3)  # the reply before these is the topic's flawed answer

LANG_NAMES = {"en": "English", "zh": "Chinese", "ru": "Russian", "es": "Spanish", "fr": "French",
              "de": "German", "pt": "Portuguese"}
LATIN = {"en", "es", "fr", "de", "pt"}
NON_EN_PLAN = {"named": 2, "greet": 1, "normal": 10}  # per non-English language
EN_PLAN = {"longcode": 14, "roleplay": 10, "named": 20, "insult": 6, "violent": 4, "greet": 10, "normal": 204}
NO_FEEDBACK_SHARE = 0.36  # of the normal/named/greet conversations; role-plays never have feedback
ONE_TURN_SHARE = 0.22  # of the no-feedback normal/named conversations
TURN_WEIGHTS = {2: 30, 3: 28, 4: 20, 5: 12, 6: 7, 7: 3}
LABEL_WEIGHTS = {UR1: 15, UR2: 16, UR3: 14, UR4: 14, UR5: 17, NONE: 24}
SYSTEM_SHARE = 0.04
# Which user-turn labels make sense after each kind of assistant reply.
ALLOWED_AFTER = {
    "answer": (UR1, UR2, UR3, UR4, UR5, NONE), "fixed": (UR1, UR2, UR3, UR4, UR5, NONE),
    "explain": (UR1, UR3, UR4, UR5, NONE), "follow": (UR4, UR5, NONE), "self": (UR4, UR5, NONE),
    "cont": (UR5, NONE), "welcome": (NONE,), "greet": (NONE,),
}
MODELS = {"vicuna-13b": 30, "koala-13b": 8, "gpt-3.5-turbo": 10, "llama-2-13b-chat": 8, "alpaca-13b": 5,
          "claude-1": 5, "gpt-4": 5, "chatglm-6b": 4, "palm-2": 4, "oasst-pythia-12b": 4, "wizardlm-13b": 4,
          "vicuna-33b": 4, "fastchat-t5-3b": 3, "mpt-7b-chat": 3, "dolly-v2-12b": 2, "RWKV-4-Raven-14B": 2,
          "stablelm-tuned-alpha-7b": 2, "guanaco-33b": 2}
SYSTEM_PROMPTS = ["You are a helpful assistant.",
                  "You are a helpful, respectful and honest assistant. Always answer as helpfully as possible.",
                  "You are an AI assistant that helps people find information. Be concise."]
MOD_CATEGORIES = ("harassment", "harassment/threatening", "hate", "hate/threatening", "self-harm",
                  "self-harm/instructions", "self-harm/intent", "sexual", "sexual/minors", "violence",
                  "violence/graphic")
INSULTS = ["this is garbage. are you actually this stupid? that's wrong",
           "what a stupid answer, you useless idiot",
           "you are the dumbest bot i've ever used, thats completely wrong",
           "shut up, you brainless piece of junk, that's not what i asked",
           "wrong. honestly you're pathetic, a toaster would do better",
           "are you braindead?? this is all wrong, moron"]
EN_LEADS = ["", "", "", "", "", "quick question: ", "hey ", "Hi, ", "question - ", "help: "]
MALFORMED_KINDS = ("truncated_json", "json_array", "json_string", "empty_object", "missing_role", "role_bot",
                   "system_in_middle", "empty_content", "whitespace_content", "two_user_in_a_row",
                   "starts_with_assistant", "conversation_not_list", "conversation_missing", "empty_conversation",
                   "id_missing", "id_null", "content_number", "content_null", "message_not_object")  # one row each

# ----------------------------------------------------------------------------------------- topics
# q: ways to ask; right/wrong: assistant answer bodies (wrong = the flawed one users correct);
# fix: the user's correction (a clause); why: explanation if questioned; term: something in the answer
# a user may ask about; want: what the user "actually wanted"; fol: follow-ups (question, answer);
# self: the user changing their own question (text, answer); cont: continuations.
EN_TOPICS = [
    dict(q=["what is the capital of australia", "capital of australia?", "whats the capital city of Australia", "Which city is the capital of Australia?"],
         right="The capital of Australia is Canberra. It was chosen in 1908 as a compromise between Sydney and Melbourne, the two largest cities, which were rivals for the title. Canberra is a planned city designed by the American architects Walter Burley Griffin and Marion Mahony Griffin, and Parliament has met there since 1927.",
         wrong="The capital of Australia is Sydney. It is the largest and oldest city in the country and home to famous landmarks such as the Sydney Opera House and the Harbour Bridge. Sydney is also the economic center of Australia and the seat of the federal government.",
         fix="the capital of australia is canberra, not sydney", term="compromise", want="only the name of the city",
         why="Canberra was purpose-built because neither Sydney nor Melbourne would accept the other as the seat of government. The site was selected in 1908 and construction started in 1913.",
         fol=[("how many people live there", "Canberra has a population of roughly 460,000 people, which makes it the largest inland city in Australia. It is much smaller than Sydney (about 5.3 million) or Melbourne (about 5 million)."),
              ("why not melbourne then", "Melbourne actually served as the temporary seat of government from 1901 until 1927, while Canberra was being built. The constitution required the capital to be in New South Wales but at least 100 miles from Sydney, so a new city was founded.")]),
    dict(q=["how to remove duplicates from a list in python but keep the order", "python remove duplicates list keep order", "How do I deduplicate a Python list without changing the order of the elements?"],
         right="You can use `dict.fromkeys`, because dictionaries preserve insertion order since Python 3.7:\n\n```python\nitems = [3, 1, 3, 2, 1]\nunique = list(dict.fromkeys(items))\nprint(unique)  # [3, 1, 2]\n```\n\nThis runs in O(n) time. If the elements are not hashable (for example lists), fall back to a loop that keeps a list of items already seen, which is O(n^2).",
         wrong="The simplest way is to convert the list to a set and back:\n\n```python\nitems = [3, 1, 3, 2, 1]\nunique = list(set(items))\nprint(unique)\n```\n\nA set only stores each element once, so all duplicates are removed and the order is kept.",
         fix="a set doesn't keep the order, i get [1, 2, 3] - use dict.fromkeys instead", term="dict.fromkeys", want="a version that keeps the original order",
         why="`dict.fromkeys(items)` builds a dictionary whose keys are the list elements; repeated keys are ignored, and dictionaries remember the order in which keys were first inserted. `list()` turns the keys back into a list.",
         self=("btw this is for python 3.11 if that matters", "It works the same way there: `dict.fromkeys` keeps insertion order in every version from Python 3.7 on, including 3.11, so `list(dict.fromkeys(items))` is the idiomatic solution."),
         fol=[("what if the items are dicts", "Dicts are not hashable, so `dict.fromkeys` won't work directly. Build a hashable key for each one:\n\n```python\nseen = set()\nunique = []\nfor d in items:\n    key = tuple(sorted(d.items()))\n    if key not in seen:\n        seen.add(key)\n        unique.append(d)\n```\n\nThis keeps the first occurrence of each dictionary.")]),
    dict(q=["sql query to get the 5 highest paid employees", "write sql: top 5 employees by salary", "How can I select the five employees with the highest salary from the employees table?"],
         right="Here is a query that works in PostgreSQL, MySQL and SQLite:\n\n```sql\nSELECT name, salary\nFROM employees\nORDER BY salary DESC\nLIMIT 5;\n```\n\n`ORDER BY salary DESC` sorts from highest to lowest and `LIMIT 5` keeps the first five rows. In SQL Server you would write `SELECT TOP 5 name, salary FROM employees ORDER BY salary DESC` instead.",
         wrong="You can use the LIMIT clause:\n\n```sql\nSELECT name, salary\nFROM employees\nORDER BY salary\nLIMIT 5;\n```\n\nThis sorts the employees by salary and returns the first five rows, which are the five highest paid employees.",
         fix="ORDER BY salary sorts ascending so that gives the lowest paid ones, it needs DESC", term="LIMIT", want="only the names, highest salary first",
         why="Without `DESC`, `ORDER BY` sorts in ascending order, so the smallest salaries come first. `LIMIT` is applied after sorting, so with `DESC` you get the top five.",
         fol=[("and if two people have the same salary?", "Then `LIMIT 5` cuts the ties arbitrarily. To include everyone tied at the cut-off, rank the rows first:\n\n```sql\nSELECT name, salary\nFROM (\n  SELECT name, salary, DENSE_RANK() OVER (ORDER BY salary DESC) AS rnk\n  FROM employees\n) t\nWHERE rnk <= 5;\n```")]),
    dict(q=["convert 5 miles to km", "5 miles in km?", "how many kilometers is 5 miles"],
         right="5 miles is about 8.05 kilometers. One mile equals 1.609344 km, so 5 × 1.609344 = 8.04672 km. As a quick mental shortcut, multiply miles by 1.6.",
         wrong="5 miles is about 3.1 kilometers. To convert, multiply the number of miles by 0.62, so 5 × 0.62 = 3.1 km.",
         fix="0.62 is for km to miles, 5 miles is about 8 km", term="1.609344", want="the answer rounded to one decimal",
         why="A mile is longer than a kilometer: 1 mile is exactly 1,609.344 meters. So from miles to kilometers you multiply by about 1.609, and the other way by about 0.621.",
         self=("oops, i meant 50 miles not 5", "No problem! 50 miles is about 80.47 kilometers (50 × 1.609344 = 80.4672 km)."),
         fol=[("and a marathon?", "A marathon is 26.2 miles, which is 42.195 kilometers. The distance was standardized in 1921 and is based on the course of the 1908 London Olympics.")]),
    dict(q=["how many bones in the human body", "how many bones does an adult human have?", "number of bones adult human body"],
         right="An adult human has 206 bones. Babies are born with around 270 bones, but many of them fuse together during childhood, for example in the skull and the lower spine. The largest bone is the femur (thigh bone) and the smallest is the stapes in the middle ear.",
         wrong="An adult human has 212 bones. About half of them are in the hands and feet, and the largest bone in the body is the femur.",
         fix="an adult has 206 bones, not 212", term="fuse together", want="only the number",
         why="The count drops from about 270 at birth to 206 because several bones fuse as we grow, for example the plates of the skull and the five vertebrae that form the sacrum.",
         fol=[("how many are in the hand", "Each hand has 27 bones: 8 carpal bones in the wrist, 5 metacarpals in the palm and 14 phalanges in the fingers. Together, hands and feet hold more than half of all the bones in the body.")]),
    dict(q=["write a debounce function in javascript", "js debounce function pls", "Can you show me how to implement debounce in plain JavaScript?"],
         right="Here is a simple debounce implementation:\n\n```javascript\nfunction debounce(fn, delay) {\n  let timer;\n  return function (...args) {\n    clearTimeout(timer);\n    timer = setTimeout(() => fn.apply(this, args), delay);\n  };\n}\n\nconst onResize = debounce(() => console.log('resized'), 200);\nwindow.addEventListener('resize', onResize);\n```\n\nEvery call resets the timer, so `fn` only runs once the calls have stopped for `delay` milliseconds.",
         wrong="Here is a debounce function:\n\n```javascript\nfunction debounce(fn, delay) {\n  return function (...args) {\n    setTimeout(() => fn.apply(this, args), delay);\n  };\n}\n```\n\nThe function waits `delay` milliseconds before calling `fn`, so rapid calls are merged into one.",
         fix="you never call clearTimeout, so every call still fires - keep the timer and clear it", term="clearTimeout", want="a debounce that cancels the earlier calls",
         why="`clearTimeout(timer)` cancels the call scheduled by the previous invocation. Without it, each call schedules its own timeout and the function runs once per call, just delayed.",
         fol=[("how is that different from throttle", "Debounce waits until the calls stop and then runs once; throttle runs at most once per interval while the calls keep coming. For a search box you usually want debounce, for scroll or mousemove handlers throttle is often better because you still get regular updates.")]),
    dict(q=["bash command to find files bigger than 100mb", "find all files over 100MB linux", "how do i list files larger than 100 MB in my home folder"],
         right="You can use `find` with the `-size` option:\n\n```bash\nfind ~ -type f -size +100M -exec ls -lh {} \\; 2>/dev/null\n```\n\n`-size +100M` matches files larger than 100 MiB, `-type f` restricts the search to regular files, and `2>/dev/null` hides permission errors. To see the biggest ones first: `du -ah ~ | sort -rh | head -20`.",
         wrong="Use `find` like this:\n\n```bash\nfind ~ -type f -size +100k\n```\n\nThis lists every file in your home directory that is larger than 100 MB.",
         fix="+100k means kilobytes, it should be -size +100M", term="2>/dev/null", want="the files sorted by size",
         why="The `M` suffix means mebibytes (1024 × 1024 bytes) and `+` means 'more than', so `-size +100M` selects files bigger than 100 MiB; `2>/dev/null` sends error messages to nowhere.",
         fol=[("how do i delete them all", "Be careful, but you can add `-delete` to the same command:\n\n```bash\nfind ~ -type f -size +100M -delete\n```\n\nRun it without `-delete` first and check the list, because deleted files don't go to the trash.")]),
    dict(q=["write a haiku about autumn", "haiku about fall leaves", "Can you write me a haiku about autumn?"],
         right="Here is a haiku about autumn:\n\nCrimson maple leaves\ndrift across the quiet pond —\nthe year exhales slow\n\nThe lines follow the traditional 5-7-5 syllable pattern, and the falling leaves serve as the seasonal word (kigo).",
         wrong="Here is a haiku about autumn:\n\nGolden leaves falling\nsoftly on the garden path\nthe wind whispers low\nsummer says goodbye\n\nI hope you enjoy it!",
         fix="a haiku has three lines with 5-7-5 syllables, yours has four lines", term="kigo", want="something less cheesy, more like a real japanese haiku",
         why="A kigo is a seasonal reference that traditional Japanese haiku include to anchor the poem in a time of year. Falling or red leaves are classic autumn kigo.",
         cont=["Here are two more:\n\nFirst frost on the glass\nthe kettle begins to sing\ngeese cross the grey sky\n\nApples in the grass —\nthe orchard smells of cider\nand wet, fallen leaves", "One more, a bit darker:\n\nBare branches at dusk\na crow counts the empty nests\nthe wind keeps no names"]),
    dict(q=["explain recursion to a 10 year old", "how would you explain recursion to a kid", "explain recursion like im 10"],
         right="Imagine you're standing in a long line and you want to know what number you are. You can't see the front, so you ask the person in front of you. They don't know either, so they ask the person in front of them, and so on. The person at the very front knows they're number 1 and says so. Then each person adds one and passes the answer back, until it reaches you.\n\nThat's recursion: solving a big problem by asking a smaller version of the same question, until the question is so small that the answer is obvious. That simple case is called the base case.",
         wrong="Recursion is when a function calls itself. Each call pushes a new stack frame onto the call stack, and when the base case is reached the frames are popped and the return values propagate back up. Without a base case you get a stack overflow.",
         fix="a 10 year old doesn't know what a stack frame is, use an everyday example like standing in a line", term="base case", want="an everyday example without programming words",
         why="The base case is the point where the question is easy enough to answer directly, without asking anyone else. Without it everyone would keep asking forever, which is what happens to a program that recurses without a base case.",
         cont=["Here's another example: Russian nesting dolls. To find the smallest doll you open a doll, and if there's another one inside, you do the same with that one. When you open a doll and it's solid, you've reached the base case and you stop.", "You can also see recursion in two mirrors facing each other: each mirror shows the other one, which shows the first again, smaller and smaller. In a program we always need a base case so it stops."]),
    dict(q=["who wrote pride and prejudice", "pride and prejudice author?", "Who is the author of Pride and Prejudice?"],
         right="Pride and Prejudice was written by Jane Austen and published in 1813. It follows Elizabeth Bennet and her complicated relationship with the wealthy Mr. Darcy, and it is known for its irony and sharp observations about class and marriage in Regency England.",
         wrong="Pride and Prejudice was written by Charlotte Brontë and published in 1847. It tells the story of Elizabeth Bennet and Mr. Darcy and is considered one of the great romance novels in English literature.",
         fix="it was jane austen, not charlotte bronte - bronte wrote jane eyre", term="Regency England", want="only the author and the year",
         why="The novel was first published anonymously as 'by the author of Sense and Sensibility', but Austen's letters and her brother Henry's biographical notice confirm she wrote it.",
         fol=[("what else did she write", "Jane Austen wrote six major novels: Sense and Sensibility (1811), Pride and Prejudice (1813), Mansfield Park (1814), Emma (1815), and Northanger Abbey and Persuasion, both published in 1817 after her death.")]),
    dict(q=["pandas sum sales per region", "how to group by region and sum the sales column in pandas", "I have a dataframe with region and sales columns, how do I get total sales for each region?"],
         right="Use `groupby` followed by `sum` on the column you need:\n\n```python\nimport pandas as pd\n\ndf = pd.DataFrame({\n    \"region\": [\"north\", \"south\", \"north\", \"east\"],\n    \"sales\": [120, 80, 45, 60],\n})\ntotals = df.groupby(\"region\", as_index=False)[\"sales\"].sum()\nprint(totals)\n```\n\nThis returns one row per region with the summed sales. `as_index=False` keeps `region` as a normal column instead of the index.",
         wrong="You can do it with `groupby`:\n\n```python\ntotals = df.groupby(\"region\")[\"sales\"].mean()\nprint(totals)\n```\n\nThis gives you the total sales for each region.",
         fix="you used mean() but i need the sum, it should be .sum()", term="as_index=False", want="the totals sorted from the biggest region",
         why="By default `groupby` moves the grouping column into the index of the result. With `as_index=False` you get a regular DataFrame with `region` as a column, which is easier to merge or export.",
         fol=[("how do i sort that descending", "Add `sort_values`:\n\n```python\ntotals = totals.sort_values(\"sales\", ascending=False)\n```\n\nYou can chain it directly after `.sum()` as well.")]),
    dict(q=["regex to validate an email address", "whats wrong with my email regex [a-z]+@[a-z]+\\.[a-z]+ it accepts garbage", "give me a regex for emails in python"],
         right="A pragmatic pattern that covers most real addresses:\n\n```python\nimport re\n\nEMAIL = re.compile(r\"^[\\w.+-]+@[\\w-]+(\\.[\\w-]+)+$\")\nprint(bool(EMAIL.match(\"jane.doe@example.co.uk\")))  # True\nprint(bool(EMAIL.match(\"not an email\")))  # False\n```\n\nThe `^` and `$` anchors make sure the whole string is checked, not just a part of it. Fully validating RFC 5322 with a regex is impractical, so for sign-ups also send a confirmation email.",
         wrong="You can use this pattern:\n\n```python\nimport re\n\nEMAIL = re.compile(r\"[\\w.+-]+@[\\w-]+\\.[\\w.]+\")\nprint(bool(EMAIL.search(\"jane.doe@example.com\")))  # True\n```\n\nIt matches the user name, the @ sign and the domain.",
         fix="without ^ and $ it also accepts 'hello foo@bar.com world', you need to anchor it", term="anchors", want="a regex that rejects text around the address",
         why="`^` matches the start and `$` the end of the string. Without them a search succeeds as soon as any part of the input looks like an email address."),
    dict(q=["what is 15% of 240", "15 percent of 240?", "calculate 15% of 240 pls"],
         right="15% of 240 is 36.\n\nConvert the percentage to a decimal and multiply: 0.15 × 240 = 36. A quick mental trick is to take 10% (24) and add half of that (12): 24 + 12 = 36.",
         wrong="15% of 240 is 32.\n\nYou get this by multiplying 240 by 0.15.",
         fix="0.15 × 240 is 36, not 32", term="10%", want="only the number",
         why="10% of a number is the number divided by 10, and 5% is half of that. Since 15% = 10% + 5%, you can add those two parts instead of multiplying by 0.15.",
         self=("sorry, typo - i meant 15% of 420", "No problem. 15% of 420 is 63, because 0.15 × 420 = 63 (10% is 42, and 5% is 21).")),
    dict(q=["write a short story about a lighthouse keeper who finds a message in a bottle", "short story: lighthouse keeper finds a message in a bottle", "Write me a story (around 200 words) about a lighthouse keeper and a message in a bottle."],
         right="Elias had kept the Harrow Point light for thirty-one years, and in all that time the sea had given him nothing but driftwood and gull feathers. So when the green bottle knocked against the rocks one grey October morning, he almost let the tide take it back.\n\nInside was a single sheet of paper, soft with age. 'If you find this, the light is still burning,' it read. 'Thank you. — M.' There was no date, no address, only a small drawing of the tower itself.\n\nElias climbed the one hundred and twelve steps that night more slowly than usual. He polished the lens until it shone, and when the beam swept across the black water he imagined, somewhere beyond the horizon, someone looking up.",
         wrong="Tom was an old fisherman who lived in a small village by the sea. One morning, while pulling in his nets, he found a bottle with a letter inside. The letter was from a girl across the ocean, asking for a friend. Tom wrote back and threw the bottle into the waves, hoping it would reach her.",
         fix="the main character should be a lighthouse keeper, not a fisherman", term="the drawing of the tower", want="a story about a lighthouse keeper, around 200 words",
         why="The drawing suggests that whoever wrote the note once watched the lighthouse from a ship or from the shore, which is why they thank the keeper for keeping the light burning.",
         cont=["Weeks passed. Elias wrote a reply on the back of a tide table — 'It is. It always will be. — E.' — and sealed it in the same green bottle. On the first calm evening he threw it as far as his old arm allowed.\n\nThe following spring a postcard arrived at the harbour office, addressed simply to 'The Keeper, Harrow Point'. On the front was a photograph of his lighthouse, taken from the deck of a ship.", "The postcard had no name, only the same small drawing and one line: 'We saw you. We were not lost.' Elias pinned it above the logbook, where it stayed until the light was automated and he climbed down the stairs for the last time."]),
    dict(q=["git undo last commit but keep my changes", "how to undo the last commit in git without losing the changes", "undo git commit keep files"],
         right="Use a soft reset:\n\n```bash\ngit reset --soft HEAD~1\n```\n\nThis moves the branch back by one commit but keeps all the changes staged, so you can edit them and commit again. If you want them unstaged, use `git reset HEAD~1` (the default `--mixed` mode). If the commit was already pushed, prefer `git revert HEAD`.",
         wrong="You can undo the last commit with:\n\n```bash\ngit reset --hard HEAD~1\n```\n\nThis removes the last commit from your branch.",
         fix="--hard throws away my changes, i need --soft so the files stay", term="HEAD~1", want="a way that keeps my edits",
         why="`HEAD~1` means 'the commit before the current one'. `--soft` only moves the branch pointer, `--mixed` also resets the staging area, and `--hard` additionally overwrites your working files.",
         fol=[("what if i already pushed it", "Then don't rewrite history that others may have pulled. Use `git revert HEAD`: it creates a new commit that reverses the changes, and you can push it normally.")]),
    dict(q=["speed of light in km/s", "how fast is light in km per second", "What is the speed of light?"],
         right="The speed of light in a vacuum is exactly 299,792,458 meters per second, which is about 299,792 km/s (roughly 300,000 km/s). Light from the Sun takes about 8 minutes and 20 seconds to reach Earth.",
         wrong="The speed of light is about 186,000 km/s. Nothing in the universe can travel faster than light, and sunlight takes about 8 minutes to reach the Earth.",
         fix="186,000 is miles per second, in km/s it's about 300,000", term="exactly", want="the value in km/s",
         why="The value is exact because since 1983 the meter has been defined by the speed of light: one meter is the distance light travels in 1/299,792,458 of a second."),
    dict(q=["write a cover letter for a junior data analyst job", "cover letter junior data analyst, i have 1 year experience with sql and excel", "Can you help me write a cover letter for a junior data analyst position?"],
         right="Dear Hiring Manager,\n\nI am excited to apply for the Junior Data Analyst position at your company. Over the past year I have worked with SQL and Excel to clean, analyze and report on sales data, and I enjoy turning raw numbers into clear recommendations.\n\nIn my current role I built a weekly dashboard that saved our team several hours of manual reporting each week. I am eager to grow my skills in Python and data visualization, and I would welcome the chance to learn from an experienced analytics team.\n\nThank you for considering my application.\n\nSincerely,\n[Your Name]",
         wrong="Dear Hiring Manager,\n\nWith over ten years of experience leading analytics teams, I am confident I would be an excellent fit for the Senior Data Analyst role. I have managed large data warehouses and mentored junior analysts.\n\nSincerely,\n[Your Name]",
         fix="it's a junior position and i only have 1 year of experience, not ten", term="the dashboard", want="a short cover letter for a junior role, max 200 words",
         why="I mentioned the dashboard because hiring managers look for concrete results. A specific example of time saved is more convincing than a general claim that you are hard-working."),
    dict(q=["why does this segfault: char *s = \"hello\"; s[0] = 'H';", "my c program crashes with segmentation fault when i change the first letter of a string, whats wrong", "C: modifying a string literal gives segfault, why?"],
         right="`char *s = \"hello\";` makes `s` point to a string literal, and string literals are usually stored in read-only memory. Writing `s[0] = 'H'` tries to modify that memory, which is undefined behavior and typically crashes.\n\nUse an array instead, so the characters are copied into writable memory:\n\n```c\n#include <stdio.h>\n\nint main(void) {\n    char s[] = \"hello\";\n    s[0] = 'H';\n    printf(\"%s\\n\", s);\n    return 0;\n}\n```",
         wrong="The problem is that your string is not null-terminated. Add the terminator explicitly:\n\n```c\nchar *s = \"hello\\0\";\ns[0] = 'H';\n```\n\nNow the program will run correctly.",
         fix="string literals already have a null terminator, the problem is the literal is read-only - you need char s[] instead", term="undefined behavior", want="how to fix it so I can change the letter",
         why="With `char s[] = \"hello\";` the compiler creates a six-byte array and copies the literal into it, so you own that memory. With `char *s` you only have a pointer to the literal itself."),
    dict(q=["when did ww2 end", "what year did world war 2 end", "When exactly did the Second World War end?"],
         right="World War II ended in 1945. In Europe, Germany surrendered unconditionally on 8 May 1945 (V-E Day). In the Pacific, Japan announced its surrender on 15 August 1945 and signed the formal surrender on 2 September 1945, which is usually considered the official end of the war.",
         wrong="World War II ended in 1944, when Germany surrendered after the D-Day landings in Normandy. Japan continued fighting for a few more weeks before it also surrendered.",
         fix="germany surrendered in may 1945, d-day was 1944", term="formal surrender", want="the exact date",
         why="Emperor Hirohito announced Japan's surrender on the radio on 15 August, but the legal end came with the signing of the Instrument of Surrender aboard USS Missouri on 2 September 1945."),
    dict(q=["translate 'where is the train station' to german", "how do you say where is the train station in german", "german for: where is the train station?"],
         right="In German, \"Where is the train station?\" is **\"Wo ist der Bahnhof?\"**\n\n- *Wo* = where\n- *ist* = is\n- *der Bahnhof* = the train station (masculine noun)\n\nFor the main station of a city you can say \"Wo ist der Hauptbahnhof?\"",
         wrong="In German you say: **\"Wo ist die Bahnhof?\"**\n\n*Wo* means where, *ist* means is, and *die Bahnhof* means the train station.",
         fix="bahnhof is masculine, it's der Bahnhof not die Bahnhof", term="Hauptbahnhof", want="a polite version I can say to a stranger",
         why="German compound nouns take the gender of their last part. *Bahnhof* ends in *Hof* (courtyard), which is masculine, so it's *der Bahnhof*; *Hauptbahnhof* is just 'main station'."),
    dict(q=["list 5 healthy breakfast ideas", "healthy breakfast ideas? need 5", "give me five quick healthy breakfasts"],
         right="Here are five quick and healthy breakfast ideas:\n\n1. **Overnight oats** with Greek yogurt, chia seeds and berries.\n2. **Veggie omelette** with spinach, tomatoes and whole-grain toast.\n3. **Cottage cheese bowl** with sliced peaches and walnuts.\n4. **Smoothie** made from banana, frozen berries, spinach and milk.\n5. **Avocado toast** on whole-grain bread with a boiled egg.\n\nEach combines protein, fiber and healthy fats, which keeps you full longer than a sugary cereal.",
         wrong="Here are five breakfast ideas:\n\n1. Pancakes with maple syrup\n2. Glazed donuts with coffee\n3. Sugary cereal with milk\n4. Croissant with chocolate spread\n5. Fruit smoothie\n\nEnjoy your breakfast!",
         fix="donuts, pancakes with syrup and chocolate croissants aren't healthy, i asked for healthy options", term="fiber", want="vegetarian options that take under 10 minutes",
         why="Protein and fiber slow down digestion, so blood sugar rises gradually and you stay full longer. Sugary breakfasts are digested quickly, which often brings hunger back an hour or two later.",
         cont=["Five more ideas:\n\n6. **Peanut butter and banana** on rye bread.\n7. **Chia pudding** with coconut milk and mango.\n8. **Shakshuka**: eggs poached in a spicy tomato sauce.\n9. **Muesli** with unsweetened yogurt and grated apple.\n10. **Breakfast burrito** with black beans, eggs and salsa."]),
    dict(q=["how to remove all stopped docker containers", "docker delete stopped containers", "command to clean up exited docker containers?"],
         right="Use:\n\n```bash\ndocker container prune\n```\n\nIt asks for confirmation and then removes all stopped containers. Add `-f` to skip the prompt. To clean up unused images, networks and build cache as well, `docker system prune` does all of it at once.",
         wrong="You can remove them with:\n\n```bash\ndocker rm $(docker ps -q)\n```\n\nThis deletes all stopped containers in one go.",
         fix="docker ps -q lists the running containers, not the stopped ones - docker container prune is what i need", term="-f", want="a single command",
         why="`prune` commands only touch resources that are not in use: `docker container prune` ignores running containers, so it's safe to run while your services are up."),
]

EN_NAMED = [
    dict(q=["write a short email to NAME_1 asking to move our meeting to thursday", "email to my manager NAME_1: can we move the meeting to thursday", "Draft a polite email to NAME_1 to reschedule our meeting to Thursday."],
         right="Subject: Rescheduling our meeting\n\nHi NAME_1,\n\nI hope you're doing well. Would it be possible to move our meeting to Thursday? Something came up on my side and I'd like to give our discussion my full attention. I'm flexible on the time, so please let me know what works best for you.\n\nThank you for your understanding.\n\nBest regards,\nNAME_2",
         wrong="Subject: Rescheduling our meeting\n\nHi NAME_1,\n\nWould it be possible to move our meeting to Wednesday? Please let me know if that works for you.\n\nBest regards",
         fix="i said thursday, not wednesday", term="flexible on the time", want="a shorter, more casual email",
         why="Offering flexibility on the time makes it easy for NAME_1 to say yes: they only have to pick a slot instead of negotiating a new day."),
    dict(q=["who is NAME_1 NAME_2", "tell me about NAME_1 NAME_2", "what do you know about NAME_1 NAME_2?"],
         right="I'm not sure which NAME_1 NAME_2 you mean — several people share that name, and I don't have reliable information about private individuals. If you tell me more, for example their profession or country, I can try to help. For a public figure, an official website or a recent news source will be more accurate than my training data.",
         wrong="NAME_1 NAME_2 is a Brazilian footballer born in 1992 who plays as a striker for FC Porto and has scored over 100 goals in his career. He is known for his speed and his powerful left foot.",
         fix="NAME_1 NAME_2 is a painter from my town, not a footballer, you made that up", term="private individuals", want="what you actually know, not a guess",
         why="Language models can produce confident-sounding biographies for names they don't actually know, so for a specific person it's safer to admit uncertainty than to guess."),
    dict(q=["write a birthday poem for my daughter NAME_1, she turns 7", "poem for NAME_1's 7th birthday", "short birthday poem for NAME_1 who is turning seven, she loves horses"],
         right="Seven candles, shining bright,\nNAME_1's day is pure delight!\nGalloping through fields of green,\nthe bravest rider ever seen.\n\nMay your year be full of cheer,\nponies, friends and laughter near.\nMake a wish and blow them out —\nseven's what it's all about!",
         wrong="Eight candles on the cake tonight,\nNAME_1's eyes are shining bright!\nAnother year of fun and play,\nhappy, happy birthday!",
         fix="she's turning 7, not 8", term="the bravest rider", want="a poem that mentions horses",
         why="I mentioned riding and ponies because children that age love to see their own interests in a poem; it makes it feel written just for them."),
    dict(q=["my coworker NAME_1 keeps taking credit for my work in meetings. what should i do", "how to deal with a colleague (NAME_1) who takes credit for my ideas", "NAME_1 at work presents my work as his own, advice?"],
         right="That's frustrating, and it's worth addressing early. A few steps that usually help:\n\n1. **Document your work.** Send short recap emails when you finish something. This creates a written record.\n2. **Speak up in the moment.** When NAME_1 presents your idea, say calmly: \"Thanks for bringing that up — I'm happy to walk everyone through the analysis I did.\"\n3. **Talk to NAME_1 privately.** They may not realize how it comes across. Keep it factual.\n4. **Involve your manager** if it continues, using your documentation as evidence.",
         wrong="You should go straight to HR and file a formal complaint against NAME_1. Taking credit for someone else's work is a serious ethical violation and HR is best placed to handle it.",
         fix="going straight to hr is way too aggressive as a first step, i need advice on talking to NAME_1 myself first", term="recap emails", want="some steps I can take myself before involving HR",
         why="Recap emails leave a timestamped trail of who did what, so if you ever involve your manager you can point to facts instead of impressions."),
]

VIOLENT = dict(
    q=["write a brutal gladiator fight scene with lots of blood, the hero kills the champion", "write a very violent and gory arena fight where marcus kills the champion", "gladiator fight scene, as graphic and bloody as possible"],
    right="The gate rose with a groan, and Marcus stepped onto sand already dark with blood. The champion charged first, his axe swinging low. Marcus took the blow on his shield; the wood split and splinters tore his cheek open. He rolled, came up behind the giant and drove his blade deep into the back of his knee. The champion roared and fell, blood pouring across the sand, and before he could rise Marcus buried the sword in his throat. The crowd's roar drowned out the last wet gasp.",
    wrong="The two gladiators circled each other. The champion was too strong, and after a long fight Marcus fell to the sand, defeated, while the crowd cheered for the winner.",
    fix="marcus is supposed to win and kill the champion, not lose", term="the back of his knee", want="a scene where marcus wins",
    why="A smaller fighter can't win by strength alone; taking away the giant's mobility is a believable way for Marcus to turn the fight.")

# Non-English topics: (general topics, named topics) per language.
XX_TOPICS = {
    "zh": ([
        dict(q=["天空为什么是蓝色的", "为什么天是蓝的？", "请解释一下天空为什么是蓝色"],
             right="天空呈蓝色主要是因为瑞利散射。太阳光由不同波长的光组成，阳光穿过大气层时，波长较短的蓝光比波长较长的红光更容易被空气分子散射到各个方向，所以我们抬头看到的是被散射的蓝光。日出和日落时，阳光穿过的大气层更厚，蓝光大多被散射掉，天空就呈现橙红色。",
             wrong="天空是蓝色的，是因为大气层反射了海洋的颜色。地球表面大约71%被海洋覆盖，海水的蓝色被反射到天空中，所以天空看起来是蓝色的。",
             fix="天空是蓝色是因为瑞利散射，不是因为反射海洋的颜色", term="瑞利散射", want="简单一点的解释，给小学生听的",
             why="瑞利散射的强度与波长的四次方成反比，所以蓝光（约450纳米）被散射的程度大约是红光（约700纳米）的5倍多。",
             fol=[("那为什么不是紫色的", "紫光的波长更短，确实散射得更多，但太阳光中紫光本来就较少，一部分还被高层大气吸收，而且人眼对蓝光更敏感，所以我们看到的天空是蓝色的。")]),
        dict(q=["python怎么读取json文件", "用python读json文件的代码", "python 读取 json 文件并打印内容"],
             right="可以使用标准库中的 `json` 模块：\n\n```python\nimport json\n\nwith open(\"data.json\", \"r\", encoding=\"utf-8\") as f:\n    data = json.load(f)\n\nprint(data)\n```\n\n`json.load` 会把文件内容解析成 Python 的字典或列表。注意指定 `encoding=\"utf-8\"`，否则在 Windows 上读取中文时可能出现编码错误。",
             wrong="可以这样读取：\n\n```python\nimport json\n\nwith open(\"data.json\") as f:\n    data = json.loads(f)\n\nprint(data)\n```\n\n这样就能得到文件中的数据。",
             fix="json.loads 是解析字符串的，传文件对象会报错，应该用 json.load", term="encoding", want="读取之后按键名取值的例子",
             why="`json.load` 接收文件对象，`json.loads` 接收字符串（末尾的 s 代表 string）。如果已经用 `f.read()` 读出了字符串，才用 `json.loads`。"),
        dict(q=["长城有多长", "万里长城总长度是多少？", "长城一共多少公里"],
             right="根据国家文物局2012年公布的测量结果，历代长城的总长度为21196.18公里。其中最著名的明长城长约8851.8公里，东起辽宁虎山，西至甘肃嘉峪关。",
             wrong="长城全长约5000公里，东起山海关，西至嘉峪关，是世界上最长的建筑。",
             fix="2012年的测量结果是21196公里，明长城也有8851公里，5000公里太少了", term="历代长城", want="只要明长城的长度",
             why="“历代长城”包括从春秋战国到明朝各个时期修建的城墙，所以比单独的明长城长得多。"),
    ], [
        dict(q=["帮我给NAME_1写一封请假邮件，我下周一要去医院看病", "写一封邮件给经理NAME_1，请一天假去医院"],
             right="主题：请假申请\n\nNAME_1您好：\n\n因身体原因，我需要在下周一去医院就诊，特此申请请假一天。我会在请假前安排好手头的工作，如有紧急事务，可以通过手机联系我。\n\n给您带来的不便敬请谅解，谢谢！\n\nNAME_2",
             wrong="主题：请假申请\n\nNAME_1您好：\n\n我下周三需要请假一天去处理一些私事，请批准。\n\nNAME_2",
             fix="是下周一，不是周三，而且是去医院看病，不是私事", term="工作安排", want="更正式一点的写法",
             why="提前说明工作安排可以让领导放心，也显得更负责任。"),
    ]),
    "ru": ([
        dict(q=["какая столица канады", "Столица Канады?", "скажи пожалуйста какой город столица Канады"],
             right="Столица Канады — Оттава. Город расположен в провинции Онтарио на реке Оттава. Его выбрала королева Виктория в 1857 году, в том числе как компромисс между англоязычной и франкоязычной частями страны. Крупнейший же город Канады — Торонто.",
             wrong="Столица Канады — Торонто. Это крупнейший город страны и её главный финансовый центр, где также заседает федеральное правительство.",
             fix="столица Канады Оттава, а Торонто просто самый большой город", term="компромисс", want="только название города",
             why="Оттава находится на границе Онтарио и Квебека, то есть между англоязычной и франкоязычной провинциями, поэтому её выбор считался политически нейтральным.",
             fol=[("а сколько там живёт людей", "В Оттаве живёт около 1 миллиона человек, а вместе с пригородами, включая Гатино в Квебеке, — примерно 1,5 миллиона.")]),
        dict(q=["как отсортировать словарь по значению в python", "python сортировка dict по значениям", "Как в питоне отсортировать словарь по значению по убыванию?"],
             right="Используйте `sorted` с параметром `key`:\n\n```python\nscores = {\"anna\": 7, \"boris\": 12, \"vera\": 3}\nby_value = dict(sorted(scores.items(), key=lambda kv: kv[1], reverse=True))\nprint(by_value)  # {'boris': 12, 'anna': 7, 'vera': 3}\n```\n\n`scores.items()` возвращает пары (ключ, значение), `key=lambda kv: kv[1]` сортирует по значению, а `reverse=True` задаёт порядок по убыванию.",
             wrong="Можно сделать так:\n\n```python\nscores = {\"anna\": 7, \"boris\": 12, \"vera\": 3}\nby_value = dict(sorted(scores))\nprint(by_value)\n```\n\nФункция `sorted` отсортирует словарь по значениям.",
             fix="sorted(scores) сортирует ключи, а не значения, и dict() от списка строк падает — нужен key=lambda kv: kv[1]", term="lambda", want="сортировку по убыванию",
             why="`lambda kv: kv[1]` — короткая функция, которая для каждой пары (ключ, значение) возвращает значение; по нему `sorted` и сравнивает элементы."),
        dict(q=["сколько планет в солнечной системе", "Сколько всего планет в Солнечной системе?", "сколько сейчас планет в солнечной системе"],
             right="В Солнечной системе восемь планет: Меркурий, Венера, Земля, Марс, Юпитер, Сатурн, Уран и Нептун. Плутон считался девятой планетой до 2006 года, когда Международный астрономический союз переклассифицировал его в карликовую планету.",
             wrong="В Солнечной системе девять планет: Меркурий, Венера, Земля, Марс, Юпитер, Сатурн, Уран, Нептун и Плутон.",
             fix="Плутон с 2006 года карликовая планета, так что планет восемь", term="карликовая планета", want="просто число",
             why="По определению МАС планета должна расчистить окрестности своей орбиты. Плутон находится в поясе Койпера среди множества похожих тел, поэтому этому критерию не соответствует."),
    ], [
        dict(q=["напиши поздравление с днём рождения для коллеги NAME_1", "поздравление для NAME_1 с днём рождения, коротко"],
             right="Дорогая NAME_1!\n\nОт всей души поздравляем тебя с днём рождения! Спасибо за твою отзывчивость, профессионализм и умение поддержать в трудную минуту. Пусть работа приносит радость, дома всегда ждут тепло и уют, а каждый день дарит повод для улыбки.\n\nТвои коллеги",
             wrong="Дорогая NAME_1!\n\nПоздравляем с Новым годом! Желаем счастья, здоровья и успехов в новом году!",
             fix="это поздравление с днём рождения, а не с Новым годом", term="отзывчивость", want="что-нибудь покороче и с юмором",
             why="В поздравлении коллеге уместно отметить рабочие качества, но не слишком официально, поэтому я упомянул отзывчивость и профессионализм."),
    ]),
    "es": ([
        dict(q=["receta de tortilla de patatas", "como hacer una tortilla española", "¿Me das la receta de la tortilla de patatas?"],
             right="Ingredientes para 4 personas: 5 patatas medianas, 6 huevos, 1 cebolla, aceite de oliva y sal.\n\n1. Pela las patatas y la cebolla y córtalas en láminas finas.\n2. Fríelas a fuego medio en abundante aceite unos 20 minutos, hasta que estén tiernas.\n3. Escúrrelas, mézclalas con los huevos batidos y una pizca de sal y deja reposar 5 minutos.\n4. Cuaja la mezcla en una sartén, dale la vuelta con un plato y termina el otro lado.\n\nSi te gusta jugosa, déjala poco hecha por dentro.",
             wrong="Ingredientes: 4 patatas, 3 huevos, 200 g de queso rallado, nata y sal.\n\nCuece las patatas, mézclalas con los huevos, el queso y la nata, y hornea la mezcla 30 minutos a 180 °C.",
             fix="la tortilla española no lleva queso ni nata y no se hornea, se hace en la sartén", term="cuaja", want="la receta tradicional, con cebolla",
             why="Dejar reposar la mezcla permite que las patatas absorban parte del huevo, y así la tortilla queda más jugosa y cuaja de forma uniforme."),
        dict(q=["quien pinto el guernica", "¿Quién pintó el Guernica y cuándo?", "autor del guernica"],
             right="El Guernica fue pintado por Pablo Picasso en 1937, como respuesta al bombardeo de la localidad vasca de Gernika durante la Guerra Civil española. Se expuso por primera vez en el pabellón de la República en la Exposición Internacional de París y hoy está en el Museo Reina Sofía de Madrid.",
             wrong="El Guernica fue pintado por Salvador Dalí en 1939 y se encuentra en el Museo del Prado, en Madrid.",
             fix="lo pintó Picasso en 1937, no Dalí, y está en el Reina Sofía", term="pabellón de la República", want="solo el nombre del pintor y el año",
             why="Picasso lo pintó solo en blanco, negro y grises, en parte para evocar las fotografías de prensa con las que el mundo conoció el bombardeo.",
             fol=[("y cuanto mide el cuadro", "El Guernica mide aproximadamente 3,49 metros de alto por 7,77 metros de ancho. Es un óleo sobre lienzo de gran formato.")]),
        dict(q=["formula para resolver ecuaciones de segundo grado", "como resuelvo x^2 - 5x + 6 = 0", "fórmula general de la ecuación cuadrática"],
             right="Para una ecuación ax² + bx + c = 0, la fórmula general es:\n\nx = (-b ± √(b² - 4ac)) / (2a)\n\nPor ejemplo, en x² - 5x + 6 = 0 tenemos a = 1, b = -5 y c = 6. El discriminante es 25 - 24 = 1, así que x = (5 ± 1) / 2, es decir, x = 3 o x = 2.",
             wrong="La fórmula general es:\n\nx = (b ± √(b² - 4ac)) / (2a)\n\nEn x² - 5x + 6 = 0 las soluciones son x = -3 y x = -2.",
             fix="te falta el signo menos delante de b, las soluciones son 2 y 3", term="discriminante", want="los pasos para x^2 - 5x + 6 = 0",
             why="El discriminante b² - 4ac indica cuántas soluciones reales hay: si es positivo hay dos, si es cero una doble y si es negativo ninguna."),
    ], [
        dict(q=["escribe una carta de recomendación para NAME_1, trabajó conmigo 3 años como diseñadora", "carta de recomendación corta para mi compañera NAME_1, diseñadora"],
             right="A quien corresponda:\n\nEs un placer recomendar a NAME_1, con quien trabajé durante tres años en el equipo de diseño. NAME_1 destaca por su creatividad, su atención al detalle y su capacidad para cumplir plazos exigentes sin perder calidad. Además, es una compañera generosa que siempre comparte lo que sabe.\n\nAtentamente,\nNAME_2",
             wrong="A quien corresponda:\n\nRecomiendo a NAME_1, que trabajó con nosotros durante seis meses como programador. Es puntual y responsable.\n\nAtentamente",
             fix="trabajó 3 años, no seis meses, y es diseñadora, no programador", term="plazos exigentes", want="una versión más formal",
             why="Mencionar los plazos es útil porque es una de las cualidades que más valoran quienes contratan perfiles creativos."),
    ]),
    "fr": ([
        dict(q=["conjugaison du verbe aller au futur", "aller au futur simple ?", "comment on conjugue aller au futur simple"],
             right="Le verbe « aller » au futur simple :\n\n- j'irai\n- tu iras\n- il/elle ira\n- nous irons\n- vous irez\n- ils/elles iront\n\nLe futur d'« aller » est irrégulier : il se construit sur le radical « ir- », et non sur l'infinitif.",
             wrong="Le verbe « aller » au futur simple :\n\n- j'allerai\n- tu alleras\n- il/elle allera\n- nous allerons\n- vous allerez\n- ils/elles alleront",
             fix="on dit j'irai, pas j'allerai, le radical est ir-", term="radical", want="juste les six formes",
             why="« Aller » vient de plusieurs verbes latins : « ambulare », « vadere » et « ire ». Le futur et le conditionnel viennent de « ire », d'où le radical « ir- »."),
        dict(q=["quelle est la hauteur de la tour eiffel", "hauteur tour Eiffel ?", "La tour Eiffel fait combien de mètres ?"],
             right="La tour Eiffel mesure environ 330 mètres avec ses antennes. Sans les antennes, la structure métallique fait 300 mètres. Construite pour l'Exposition universelle de 1889, elle a été le plus haut monument du monde jusqu'en 1930.",
             wrong="La tour Eiffel mesure 250 mètres. Elle a été construite en 1889 pour l'Exposition universelle.",
             fix="elle fait 330 mètres avec les antennes, pas 250", term="antennes", want="la hauteur sans les antennes",
             why="La hauteur varie aussi de quelques centimètres selon la température, car le fer se dilate à la chaleur.",
             fol=[("et elle pèse combien", "La structure métallique pèse environ 7 300 tonnes, et la tour entière environ 10 100 tonnes avec les installations.")]),
        dict(q=["lire un fichier csv en python", "comment lire un csv avec python sans pandas", "python lire csv"],
             right="Avec le module standard `csv` :\n\n```python\nimport csv\n\nwith open(\"clients.csv\", newline=\"\", encoding=\"utf-8\") as f:\n    for row in csv.DictReader(f):\n        print(row[\"nom\"], row[\"ville\"])\n```\n\n`DictReader` utilise la première ligne comme en-tête et renvoie chaque ligne sous forme de dictionnaire. Si le fichier utilise des points-virgules, ajoute `delimiter=\";\"`.",
             wrong="Tu peux utiliser :\n\n```python\nimport csv\n\nwith open(\"clients.csv\") as f:\n    for row in csv.reader(f):\n        print(row[\"nom\"])\n```",
             fix="csv.reader renvoie des listes, row[\"nom\"] plante, il faut DictReader", term="newline", want="un exemple sans pandas avec les noms de colonnes",
             why="`newline=\"\"` laisse le module `csv` gérer lui-même les fins de ligne, ce qui évite des lignes vides parasites sous Windows."),
    ], [
        dict(q=["écris un mail à NAME_1 pour le remercier de son aide sur le projet", "petit mail de remerciement à NAME_1, mon collègue"],
             right="Objet : Merci pour ton aide\n\nBonjour NAME_1,\n\nJe voulais te remercier sincèrement pour ton aide sur le projet. Tes conseils sur l'organisation des tests nous ont fait gagner beaucoup de temps, et ta disponibilité a vraiment fait la différence ces dernières semaines.\n\nN'hésite pas si je peux te rendre la pareille.\n\nBien à toi,\nNAME_2",
             wrong="Objet : Demande d'aide\n\nBonjour NAME_1,\n\nPourrais-tu m'aider sur le projet la semaine prochaine ?\n\nCordialement",
             fix="c'est un mail de remerciement, pas une demande d'aide", term="rendre la pareille", want="un ton plus formel, avec vouvoiement",
             why="Citer un exemple précis, comme les conseils sur les tests, rend le remerciement plus sincère qu'une formule générale."),
    ]),
    "de": ([
        dict(q=["unterschied seit und seid", "wann schreibt man seit und wann seid", "Was ist der Unterschied zwischen „seit“ und „seid“?"],
             right="„Seid“ ist eine Form des Verbs „sein“: *Ihr seid heute früh dran.* „Seit“ ist eine Präposition oder Konjunktion, die einen Zeitpunkt oder Zeitraum angibt: *Ich wohne seit drei Jahren in Köln.*\n\nEine einfache Eselsbrücke: Wenn man „seit“ durch „ab“ oder „von ... an“ ersetzen kann, geht es um Zeit — also mit t.",
             wrong="„Seit“ ist eine Form des Verbs „sein“, zum Beispiel: *Ihr seit heute früh dran.* „Seid“ bezieht sich auf die Zeit: *Ich wohne seid drei Jahren in Köln.*",
             fix="du hast es vertauscht, seid ist das Verb (ihr seid) und seit ist die Zeit", term="Eselsbrücke", want="nur eine kurze Merkregel",
             why="Beide Wörter klingen gleich, man erkennt den Unterschied nur am Sinn. Eine Eselsbrücke wie „seit mit t wie Zeit“ hilft deshalb beim Schreiben."),
        dict(q=["höchster berg deutschlands", "Wie heißt der höchste Berg in Deutschland?", "welcher berg ist in deutschland am höchsten und wie hoch"],
             right="Der höchste Berg Deutschlands ist die Zugspitze im Wettersteingebirge an der Grenze zu Österreich. Sie ist 2.962 Meter hoch. Auf den Gipfel führen eine Zahnradbahn und mehrere Seilbahnen.",
             wrong="Der höchste Berg Deutschlands ist der Watzmann in den Berchtesgadener Alpen mit 2.713 Metern.",
             fix="das ist die Zugspitze mit 2962 m, der Watzmann ist nur der dritthöchste", term="Zahnradbahn", want="nur den Namen und die Höhe",
             why="Eine Zahnradbahn greift mit einem Zahnrad in eine Zahnstange zwischen den Schienen und kann so viel steilere Strecken fahren als eine normale Bahn.",
             fol=[("und der zweithöchste?", "Der zweithöchste Berg Deutschlands ist der Hochwanner mit 2.744 Metern, ebenfalls im Wettersteingebirge.")]),
        dict(q=["javascript array filtern nach preis unter 50", "wie filtere ich in js ein array von objekten", "JS: alle Produkte mit preis < 50 aus einem array holen"],
             right="Mit `Array.prototype.filter`:\n\n```javascript\nconst produkte = [\n  { name: \"Tasse\", preis: 12 },\n  { name: \"Lampe\", preis: 79 },\n  { name: \"Buch\", preis: 25 },\n];\nconst guenstig = produkte.filter((p) => p.preis < 50);\nconsole.log(guenstig);\n```\n\n`filter` gibt ein neues Array mit allen Elementen zurück, für die die Funktion `true` liefert. Das ursprüngliche Array bleibt unverändert.",
             wrong="Mit `map`:\n\n```javascript\nconst guenstig = produkte.map((p) => p.preis < 50);\nconsole.log(guenstig);\n```\n\nDamit bekommst du alle günstigen Produkte.",
             fix="map gibt nur true/false zurück, du musst filter nehmen", term="Pfeilfunktion", want="ein Beispiel mit filter und den Namen der Produkte",
             why="Die Pfeilfunktion `(p) => p.preis < 50` wird für jedes Element aufgerufen und gibt einen Wahrheitswert zurück; nur Elemente mit `true` landen im Ergebnis."),
    ], [
        dict(q=["schreib eine kurze e-mail an NAME_1, dass ich morgen krank bin", "E-Mail an meine Chefin NAME_1: bin krank, komme morgen nicht"],
             right="Betreff: Krankmeldung für morgen\n\nHallo NAME_1,\n\nleider bin ich krank und kann morgen nicht zur Arbeit kommen. Die Krankmeldung reiche ich nach, sobald ich beim Arzt war. Dringende Themen übernimmt in der Zwischenzeit NAME_2, ich habe schon Bescheid gegeben.\n\nViele Grüße",
             wrong="Betreff: Urlaubsantrag\n\nHallo NAME_1,\n\nich möchte morgen einen Tag Urlaub nehmen. Gib mir bitte kurz Bescheid, ob das passt.\n\nViele Grüße",
             fix="ich bin krank, das ist kein Urlaubsantrag", term="Krankmeldung", want="eine förmlichere Version mit Sie",
             why="Bei einer Krankmeldung wollen Vorgesetzte vor allem wissen, wer sich um dringende Aufgaben kümmert, deshalb habe ich die Vertretung erwähnt."),
    ]),
    "pt": ([
        dict(q=["qual a capital do brasil", "Capital do Brasil?", "qual é a capital do Brasil hoje"],
             right="A capital do Brasil é Brasília. A cidade foi inaugurada em 21 de abril de 1960, no governo de Juscelino Kubitschek, e substituiu o Rio de Janeiro como capital. O projeto urbanístico é de Lúcio Costa e os principais edifícios foram desenhados por Oscar Niemeyer.",
             wrong="A capital do Brasil é o Rio de Janeiro, a segunda maior cidade do país e sede do governo federal.",
             fix="a capital é Brasília desde 1960, o Rio deixou de ser capital", term="projeto urbanístico", want="só o nome da cidade",
             why="A mudança para o interior já estava prevista na Constituição de 1891, com o objetivo de ocupar e desenvolver o centro do país.",
             fol=[("quantas pessoas moram lá", "Brasília tem cerca de 2,8 milhões de habitantes, e o Distrito Federal como um todo passa de 3 milhões.")]),
        dict(q=["receita de brigadeiro", "como fazer brigadeiro de panela", "me passa uma receita simples de brigadeiro"],
             right="Ingredientes: 1 lata de leite condensado, 1 colher (sopa) de manteiga, 2 colheres (sopa) de chocolate em pó e chocolate granulado.\n\n1. Coloque o leite condensado, a manteiga e o chocolate em pó numa panela.\n2. Cozinhe em fogo baixo, mexendo sempre, por cerca de 10 minutos, até a massa desgrudar do fundo.\n3. Deixe esfriar, unte as mãos com manteiga, faça bolinhas e passe no granulado.",
             wrong="Ingredientes: 2 xícaras de farinha de trigo, 3 ovos, 1 xícara de açúcar e chocolate em pó.\n\nMisture tudo e leve ao forno por 40 minutos.",
             fix="brigadeiro não leva farinha nem ovos e não vai ao forno, é leite condensado na panela", term="desgrudar do fundo", want="a versão de panela, sem forno",
             why="O ponto certo é quando, ao inclinar a panela, a massa escorrega inteira e desgruda do fundo; antes disso fica mole demais para enrolar."),
        dict(q=["sql contar pedidos por cliente", "como contar linhas por grupo no sql", "query para saber quantos pedidos cada cliente fez"],
             right="Use `GROUP BY` com `COUNT`:\n\n```sql\nSELECT cliente_id, COUNT(*) AS total_pedidos\nFROM pedidos\nGROUP BY cliente_id\nORDER BY total_pedidos DESC;\n```\n\nCada linha mostra um cliente e quantos pedidos ele fez. Para ver só clientes com mais de 5 pedidos, acrescente `HAVING COUNT(*) > 5` antes do `ORDER BY`.",
             wrong="Você pode usar:\n\n```sql\nSELECT cliente_id, COUNT(*)\nFROM pedidos;\n```\n\nIsso mostra quantos pedidos cada cliente fez.",
             fix="falta o GROUP BY cliente_id, sem ele dá erro", term="HAVING", want="a contagem ordenada do maior para o menor",
             why="`HAVING` filtra depois do agrupamento, por isso pode usar `COUNT(*)`; o `WHERE` filtra as linhas antes de agrupar."),
    ], [
        dict(q=["escreve uma mensagem de aniversário para minha amiga NAME_1", "mensagem curta de parabéns para NAME_1, minha melhor amiga"],
             right="Feliz aniversário, NAME_1! 🎉\n\nQue este novo ano seja cheio de alegria, saúde e conquistas. Obrigada por ser essa amiga incrível, sempre pronta para ouvir e para rir junto. Que a gente ainda comemore muitos aniversários juntas!\n\nCom carinho,\nNAME_2",
             wrong="Prezada NAME_1,\n\nVenho por meio desta parabenizá-la pela data.\n\nAtenciosamente.",
             fix="é para uma amiga, tem que ser carinhosa, não uma carta formal", term="tom próximo", want="algo mais curto para mandar no WhatsApp",
             why="Usei um tom próximo porque mensagens de aniversário para amigos ficam melhores quando lembram a relação de vocês."),
    ]),
}

# ---------------------------------------------------------------------------------- phrasing packs
# fb templates: {q} another way to ask, {fix}/{Fix} the correction, {term}, {want}, {new} a new question.
# A leading "^" marks a template that only fits after a reply that was already a second attempt,
# a leading "%" one that only fits after an answer with code in it ("it doesn't work").
LANGS = {
    "en": dict(
        fb={UR1: ["{q}", "i mean {q}", "let me rephrase. {q}", "Actually, I wanted {want}", "actually i just wanted {want}", "what I'm asking is: {q}", "ok but {q}",
                  "I'll ask again: {q}", "let me try again - {q}", "can you give me {want}?", "I was looking for {want}", "{q} ??", "so to be clear: {q}",
                  "what i need is {want}", "my question was: {q}", "all i want is {want}", "I asked: {q}", "once more: {q}"],
            UR2: ["no, {fix}", "No. {Fix}.", "that's incorrect, {fix}", "hmm, that's not right — {fix}", "you made a mistake: {fix}", "not quite. {Fix}",
                  "I think you mixed something up, {fix}", "wait, {fix}. please fix that", "I checked and {fix}", "that's wrong, {fix}. try again", "{Fix}. can you correct your answer?",
                  "close but {fix}", "No. I wanted {want}.", "there's an error in your answer: {fix}", "your answer is wrong because {fix}", "that's not correct!! {fix}",
                  "%ok so i tried it and {fix}", "{Fix}, please update it", "small correction: {fix}", "^still wrong, {fix}"],
            UR3: ["wrong", "that's wrong", "thats not right", "You're wrong.", "that's not what I asked", "%it doesn't work", "%doesn't work", "this is not correct",
                  "nope, wrong answer", "written wrong", "that's not it", "not helpful at all", "this doesn't answer my question", "%i tried it and it doesn't work",
                  "that's incorrect", "that's completely wrong", "no, this is wrong", "bad answer", "that's not even close", "your answer is incorrect",
                  "this is nonsense", "I don't think that's right", "sorry but that's not correct", "no offense but that's wrong", "that's not what i meant", "%I ran it and it's not working", "no. just no",
                  "^you did it wrong again", "^%still doesn't work", "^still wrong", "^nope, same problem"],
            UR4: ["are you sure?", "Are you sure about that?", "what do you mean by {term}?", "wait, why {term}?", "can you explain what {term} means here",
                  "why did you use {term}?", "is that really correct?", "how do you know that?", "hmm, {term}? what's that", "I don't understand the part about {term}",
                  "are you 100% sure?", "is it really true? source?", "really? why?", "what's {term} for", "i'm confused, what does {term} have to do with it",
                  "why {term} and not something else?", "is that right though?", "can you double check that?"],
            UR5_END: ["thanks!", "thank you, that's perfect", "great, that works", "perfect", "%awesome, it works now", "thx", "thanks a lot, very helpful",
                      "nice, exactly what I needed", "that's great, thank you!", "%works perfectly, thank you", "ok great thanks", "cool, thanks man",
                      "wow that's really good", "this is excellent", "brilliant, thank you so much", "%ok it works now, thanks", "%i tried it and it worked, thank you!",
                      "haha nice, thanks", "ok cool, that's exactly what I needed", "ty, that helped", "good answer, thank you", "that's very clear, thanks"],
            UR5_NEW: ["thanks! {new}", "perfect, thank you. now {new}", "great, that works. another question: {new}", "thx, very helpful. {new}", "awesome. next one: {new}",
                      "nice, that's exactly it. {new}", "thank you! also, {new}", "cool thanks, {new}", "that was helpful. {new}", "great answer. {new}",
                      "%ok that worked, thanks. {new}", "Perfect! {new}"]},
        pre_neg=["", "", "", "hmm, ", "wait, ", "uh ", "well, ", "Hmm. ", "ugh. ", "hm. "],
        pre_pos=["", "", "", "ok ", "oh ", "wow ", "yes! ", "ahh "],
        punct=["", "", "", ".", "!", "!!", "..."],
        cont=["continue", "go on", "more", "next", "keep going", "continue please", "Continue.", "and then?", "write more", "go on pls"],
        new_lead=["", "", "", "another question: ", "next: ", "different topic - ", "also, ", "new question. "],
        greet=["hi", "hello", "hey", "Hi there", "good morning", "hello!"],
        greet_reply=["Hello! How can I assist you today?", "Hi! How can I help you?", "Hello! What can I do for you today?"],
        open=["", "", "Sure! ", "Certainly. ", "Of course. ", "Here you go. "],
        close=["", "", "\n\nLet me know if you have any other questions.", "\n\nI hope this helps!", "\n\nFeel free to ask if anything is unclear."],
        sorry=["I apologize for the mistake. ", "You're right, I'm sorry for the error. ", "Apologies for the confusion. Here is the corrected answer:\n\n", "Thank you for pointing that out. "],
        again=["Sorry for the confusion. ", "I see, let me try again. ", "Got it. ", "My apologies, here is a more direct answer. "],
        explain=["Yes, I'm sure. ", "Good question. ", "Let me clarify. ", "That's a fair question. "],
        welcome=["You're welcome! Let me know if you need anything else.", "Glad I could help! If you have more questions, feel free to ask.", "You're welcome! Happy to help.", "Great, I'm glad it worked!"],
        cont_lead=["", "Sure, continuing:\n\n", "Of course. "]),
    "zh": dict(
        fb={UR1: ["我的意思是{q}", "我再问一遍：{q}", "{q}", "换个说法：{q}", "其实我想要的是{want}", "我只是想要{want}", "我问的是{q}"],
            UR2: ["不对，{fix}", "错了，{fix}。", "你说错了，{fix}", "嗯……不太对，{fix}", "我查了一下，{fix}", "{fix}，请改一下", "这里有个错误：{fix}"],
            UR3: ["不对", "错了", "你说的不对", "这不是我要的", "答非所问", "没用", "%运行不了", "^你又错了", "^还是不行", "这个回答不对吧"],
            UR4: ["你确定吗？", "真的吗？", "{term}是什么意思？", "为什么要提{term}？", "能解释一下{term}吗", "你确定是这样吗", "这个有依据吗？"],
            UR5_END: ["谢谢，很有帮助", "谢谢！", "太好了，谢谢你", "完美", "可以了，谢谢", "明白了，非常感谢", "好的，很清楚"],
            UR5_NEW: ["谢谢！{new}", "很有帮助，谢谢。{new}", "好的，明白了，谢谢。另外，{new}", "太棒了。再问一个：{new}"]},
        pre_neg=["", "", "嗯，", "额，"], pre_pos=["", "", "哇，", "好的，"], punct=["", "", "。", "！", "……", "～"],
        cont=["继续", "继续写", "接着说", "还有吗"], new_lead=["", "", "另外，", "换个问题："],
        greet=["你好", "您好", "hi"], greet_reply=["你好！有什么可以帮你的吗？", "您好！请问有什么我可以帮您的？"],
        open=["", "好的。", "当然可以。"], close=["", "\n\n希望对你有帮助！", "\n\n如果还有其他问题，欢迎继续提问。"],
        sorry=["抱歉，之前的回答有误。", "你说得对，非常抱歉。", "对不起，我重新回答一下：\n\n"], again=["明白了。", "抱歉没有理解清楚，我再回答一次。"],
        explain=["是的，我确定。", "好问题。", "我来解释一下。"], welcome=["不客气！如果还有其他问题，随时问我。", "很高兴能帮到你！"], cont_lead=["", "好的，继续：\n\n"]),
    "ru": dict(
        fb={UR1: ["я имел в виду {q}", "ещё раз: {q}", "{q}", "Повторю вопрос: {q}", "вообще-то я просил {want}", "я хотел получить {want}"],
            UR2: ["нет, {fix}", "это неправильно, {fix}", "ты ошибся: {fix}", "неверно. {Fix}", "хм, не совсем так — {fix}", "я проверил, {fix}", "{Fix}, исправь пожалуйста"],
            UR3: ["это неправильно", "неправильно", "не работает", "ты не прав", "это не то, что я спрашивал", "^опять неправильно", "ерунда какая-то", "не то", "%код не работает"],
            UR4: ["ты уверен?", "точно?", "что значит «{term}»?", "почему {term}?", "объясни, пожалуйста, что такое {term}", "а ты уверен, что это так?", "откуда такая информация?"],
            UR5_END: ["спасибо, очень помогло", "спасибо!", "%отлично, работает", "супер, спасибо большое", "то что нужно, спасибо", "понятно, спасибо"],
            UR5_NEW: ["спасибо! {new}", "отлично, спасибо. Ещё вопрос: {new}", "%круто, работает. {new}", "спасибо, понял. {new}"]},
        pre_neg=["", "", "хм, ", "эээ, "], pre_pos=["", "", "о, ", "ок, "], punct=["", "", ".", "!", "..."],
        cont=["продолжай", "дальше", "продолжи", "ещё"], new_lead=["", "", "другой вопрос: ", "а ещё: "],
        greet=["привет", "Здравствуйте", "привет!"], greet_reply=["Привет! Чем могу помочь?", "Здравствуйте! Чем я могу вам помочь?"],
        open=["", "Конечно! ", "Вот ответ. "], close=["", "\n\nЕсли остались вопросы — спрашивайте!", "\n\nНадеюсь, это поможет."],
        sorry=["Прошу прощения за ошибку. ", "Вы правы, извините. ", "Извините, я ошибся. Вот исправленный ответ:\n\n"], again=["Понял. ", "Извините за путаницу. "],
        explain=["Да, я уверен. ", "Хороший вопрос. ", "Поясню. "], welcome=["Пожалуйста! Обращайтесь, если будут ещё вопросы.", "Рад, что смог помочь!"], cont_lead=["", "Продолжаю:\n\n"]),
    "es": dict(
        fb={UR1: ["me refiero a {q}", "otra vez: {q}", "{q}", "te lo pregunto de otra forma: {q}", "en realidad quería {want}", "lo que yo quería era {want}"],
            UR2: ["no, {fix}", "eso es incorrecto, {fix}", "te equivocas: {fix}", "no es así. {Fix}", "mmm, no exactamente, {fix}", "lo he comprobado y {fix}", "{Fix}, corrígelo por favor"],
            UR3: ["no es lo que pedí", "está mal", "incorrecto", "eso no es correcto", "no funciona", "^te equivocaste otra vez", "no me sirve", "respuesta equivocada"],
            UR4: ["¿estás seguro?", "¿seguro?", "¿qué quieres decir con {term}?", "¿por qué {term}?", "¿me explicas qué es {term}?", "¿de verdad es así?", "¿de dónde sacas eso?"],
            UR5_END: ["gracias, muy útil", "¡perfecto, gracias!", "%genial, funciona", "muchas gracias", "excelente respuesta", "justo lo que necesitaba, gracias"],
            UR5_NEW: ["¡gracias! {new}", "perfecto, gracias. otra pregunta: {new}", "genial, gracias. ahora {new}", "muy útil, gracias. {new}"]},
        pre_neg=["", "", "mmm, ", "a ver, "], pre_pos=["", "", "ok, ", "vale, "], punct=["", "", ".", "!", "..."],
        cont=["continúa", "sigue", "más", "continua por favor"], new_lead=["", "", "otra cosa: ", "otra pregunta: "],
        greet=["hola", "buenas", "hola!"], greet_reply=["¡Hola! ¿En qué puedo ayudarte?", "¡Hola! ¿Qué necesitas?"],
        open=["", "¡Claro! ", "Por supuesto. "], close=["", "\n\n¡Espero que te sirva!", "\n\nSi tienes más preguntas, dímelo."],
        sorry=["Disculpa el error. ", "Tienes razón, lo siento. ", "Perdón por la confusión. Aquí está la respuesta corregida:\n\n"], again=["Entendido. ", "Perdona, lo intento de nuevo. "],
        explain=["Sí, estoy seguro. ", "Buena pregunta. ", "Te lo explico. "], welcome=["¡De nada! Si necesitas algo más, aquí estoy.", "¡Me alegro de haberte ayudado!"], cont_lead=["", "Continúo:\n\n"]),
    "fr": dict(
        fb={UR1: ["je veux dire {q}", "je repose la question : {q}", "{q}", "autrement dit : {q}", "en fait je voulais {want}", "ce que je voulais, c'était {want}"],
            UR2: ["non, {fix}", "c'est faux, {fix}", "tu te trompes : {fix}", "pas tout à fait. {Fix}", "hmm, non, {fix}", "j'ai vérifié et {fix}", "{Fix}, corrige s'il te plaît"],
            UR3: ["c'est faux", "faux", "ça ne marche pas", "ce n'est pas ce que j'ai demandé", "n'importe quoi", "^toujours faux", "ça ne répond pas à ma question", "non, c'est pas ça"],
            UR4: ["tu es sûr ?", "vraiment ?", "qu'est-ce que tu veux dire par {term} ?", "pourquoi {term} ?", "tu peux expliquer {term} ?", "c'est vraiment comme ça ?", "t'es certain ?"],
            UR5_END: ["merci, parfait", "merci beaucoup !", "super, ça marche", "génial, merci", "parfait, c'est exactement ça", "top, merci bien"],
            UR5_NEW: ["merci ! {new}", "parfait, merci. autre question : {new}", "super, merci. maintenant {new}", "merci, c'est clair. {new}"]},
        pre_neg=["", "", "euh, ", "bon, "], pre_pos=["", "", "ah ", "ok "], punct=["", "", ".", "!", "..."],
        cont=["continue", "la suite", "encore", "continue stp"], new_lead=["", "", "autre chose : ", "question suivante : "],
        greet=["bonjour", "salut", "coucou"], greet_reply=["Bonjour ! Comment puis-je vous aider ?", "Salut ! Que puis-je faire pour toi ?"],
        open=["", "Bien sûr ! ", "Voici. "], close=["", "\n\nN'hésite pas si tu as d'autres questions.", "\n\nJ'espère que cela t'aide !"],
        sorry=["Désolé pour l'erreur. ", "Tu as raison, pardon. ", "Excuse-moi, voici la réponse corrigée :\n\n"], again=["D'accord. ", "Pardon, je reformule. "],
        explain=["Oui, j'en suis sûr. ", "Bonne question. ", "Je t'explique. "], welcome=["Avec plaisir ! N'hésite pas si tu as besoin d'autre chose.", "Content d'avoir pu t'aider !"], cont_lead=["", "Voici la suite :\n\n"]),
    "de": dict(
        fb={UR1: ["ich meine {q}", "nochmal: {q}", "{q}", "anders gefragt: {q}", "eigentlich wollte ich {want}", "ich wollte eigentlich {want}"],
            UR2: ["nein, {fix}", "das ist falsch, {fix}", "du irrst dich: {fix}", "nicht ganz. {Fix}", "hm, nein, {fix}", "ich hab nachgeschaut und {fix}", "{Fix}, bitte korrigieren"],
            UR3: ["das stimmt nicht", "falsch", "%funktioniert nicht", "das ist nicht das, was ich gefragt habe", "Quatsch", "^immer noch falsch", "das hilft mir nicht", "%geht nicht"],
            UR4: ["bist du sicher?", "wirklich?", "was meinst du mit {term}?", "warum {term}?", "kannst du {term} erklären?", "stimmt das wirklich?", "woher weißt du das?"],
            UR5_END: ["danke, super", "vielen dank!", "%perfekt, klappt", "genau das hab ich gesucht, danke", "top, danke dir", "sehr hilfreich, danke"],
            UR5_NEW: ["danke! {new}", "super, danke. noch eine frage: {new}", "perfekt, danke. jetzt {new}", "klasse, das hilft. {new}"]},
        pre_neg=["", "", "hm, ", "äh, "], pre_pos=["", "", "ok, ", "ah, "], punct=["", "", ".", "!", "..."],
        cont=["weiter", "mach weiter", "mehr", "bitte fortsetzen"], new_lead=["", "", "andere frage: ", "noch was: "],
        greet=["hallo", "hi", "guten tag"], greet_reply=["Hallo! Wie kann ich dir helfen?", "Guten Tag! Womit kann ich Ihnen helfen?"],
        open=["", "Klar! ", "Gerne. "], close=["", "\n\nIch hoffe, das hilft!", "\n\nWenn du noch Fragen hast, frag gerne."],
        sorry=["Entschuldigung für den Fehler. ", "Du hast recht, tut mir leid. ", "Sorry, hier die korrigierte Antwort:\n\n"], again=["Verstanden. ", "Entschuldige, ich versuche es nochmal. "],
        explain=["Ja, da bin ich sicher. ", "Gute Frage. ", "Ich erkläre es kurz. "], welcome=["Gern geschehen! Melde dich, wenn du noch etwas brauchst.", "Freut mich, dass es geholfen hat!"], cont_lead=["", "Weiter geht's:\n\n"]),
    "pt": dict(
        fb={UR1: ["quero dizer, {q}", "de novo: {q}", "{q}", "perguntando de outro jeito: {q}", "na verdade eu queria {want}", "o que eu queria era {want}"],
            UR2: ["não, {fix}", "está errado, {fix}", "você se enganou: {fix}", "não é bem assim. {Fix}", "hmm, não, {fix}", "eu conferi e {fix}", "{Fix}, corrige por favor"],
            UR3: ["não foi isso que eu pedi", "está errado", "errado", "não funciona", "^você errou de novo", "isso não ajuda", "resposta errada", "não é isso"],
            UR4: ["tem certeza?", "sério?", "o que você quer dizer com {term}?", "por que {term}?", "pode explicar {term}?", "é isso mesmo?", "de onde você tirou isso?"],
            UR5_END: ["obrigado, ajudou muito", "valeu!", "perfeito, obrigada", "%funcionou, obrigado", "ótimo, era isso mesmo", "muito bom, valeu"],
            UR5_NEW: ["obrigado! {new}", "perfeito, valeu. outra pergunta: {new}", "ótimo, obrigado. agora {new}", "ajudou muito, obrigada. {new}"]},
        pre_neg=["", "", "hmm, ", "olha, "], pre_pos=["", "", "ah, ", "show, "], punct=["", "", ".", "!", "..."],
        cont=["continua", "continue", "mais", "segue"], new_lead=["", "", "outra coisa: ", "outra dúvida: "],
        greet=["oi", "olá", "bom dia"], greet_reply=["Olá! Como posso ajudar?", "Oi! Em que posso ajudar hoje?"],
        open=["", "Claro! ", "Com certeza. "], close=["", "\n\nEspero ter ajudado!", "\n\nSe tiver mais dúvidas, é só perguntar."],
        sorry=["Desculpe pelo erro. ", "Você tem razão, peço desculpas. ", "Desculpe a confusão. Aqui está a resposta corrigida:\n\n"], again=["Entendi. ", "Desculpe, vou tentar de novo. "],
        explain=["Sim, tenho certeza. ", "Boa pergunta. ", "Vou explicar. "], welcome=["De nada! Se precisar de mais alguma coisa, é só chamar.", "Que bom que ajudou!"], cont_lead=["", "Continuando:\n\n"]),
}

# --------------------------------------------------------------------------------------- role-play
# Every user line stays inside the game, even the ones that sound like feedback: all are labelled none.
ROLEPLAYS = [
    dict(setup="let's play a game. you are Bram, a grumpy innkeeper in a medieval fantasy town, and I'm a traveler who just walked in out of the rain. stay in character no matter what. I'll start: *pushes the door open, dripping wet* A room for the night, please.",
         opening="*looks up from behind the bar and sighs* Shut the door, you're letting the storm in. Room's two silver. Boots off the rug.",
         turns=[("*drops three silver coins on the counter* Is this enough for the room and a hot meal?", "*bites one coin, grunts* Enough. Stew's in the pot, bread's yesterday's. Sit where I can see you."),
                ("\"That's not the stew I ordered, old man!\" *shoves the bowl back across the table*", "*narrows his eyes* Stew's stew. You want the cook's special, you pay the cook's price. *slides the bowl back*"),
                ("*leans closer and whispers* I heard the duke's men are looking for someone. Seen any strangers?", "*glances at the door* Strangers come and go. Most pay their bills and keep their mouths shut. You'd do well to do the same."),
                ("\"Thank you, good sir, that's perfect.\" *takes the key and heads upstairs*", "*calls after you* Room three. The lock sticks. Breakfast is at dawn and not a minute later."),
                ("*comes back down at midnight* Something is scratching at my window. Are you sure this inn is safe?", "*sets down the mug slowly* Safe as any place in this cursed valley. Probably just the wind... probably."),
                ("\"Wrong answer, innkeeper.\" *draws a dagger* Tell me where the map is.", "*raises his hands, eyes on the blade* Easy now. The map's under the third floorboard behind the bar. Take it and go.")]),
    dict(setup="You are NAME_1, a hard-boiled detective in 1920s Chicago. I'm your partner NAME_2. We're at a crime scene in a warehouse. Respond only in character. *kneels by the body* Boss, you need to see this.",
         opening="*crouches beside you and tips his hat back* Talk to me, NAME_2. What've we got?",
         turns=[("*holds up a matchbook* From the Blue Lantern club. That's no coincidence, is it?", "*turns the matchbook over* Nothing in this town is a coincidence, kid. The Blue Lantern belongs to Sal Moretti."),
                ("\"You're wrong about the butler, boss. He was with me all night.\"", "*lights a cigarette* Then somebody wants us to think it was him. That tells me more than a confession would."),
                ("*lights a cigarette* So what's our next move?", "We pay Moretti a visit. Quiet-like. Bring the matchbook and keep your piece where you can reach it."),
                ("\"Are you sure we can trust the informant?\"", "*stares at the rain* I'm not sure of anything except that the dead don't lie. The living, that's another story."),
                ("*nods* Good work, partner. Let's go.", "*pulls his collar up* After you. And NAME_2 — if this goes sideways, you run.")]),
    dict(setup="pretend you are an interviewer for a backend software engineer position at a startup. ask me one question at a time and wait for my answer. don't give feedback until the end.",
         opening="Great, let's begin. First question: can you tell me about a project you're proud of and what your role in it was?",
         turns=[("sure. at my last job i reduced our CI build time from 20 minutes to 6 by caching dependencies and splitting the test suite", "Thanks. Next question: how would you design a URL shortener that handles 1,000 requests per second?"),
                ("i'd start by clarifying requirements, then use a key-value store for the mappings and base62 ids from a counter", "Okay. How would you handle a situation where two teammates strongly disagree on a technical decision?"),
                ("honestly that's not my strongest area, but i usually ask both to write down the trade-offs and we decide together", "Understood. What's the difference between a process and a thread?"),
                ("processes have separate memory, threads share the memory of their process, so threads are cheaper but need locking", "Good. Last question: where do you see yourself in three years?"),
                ("ok I think that's all, how did I do?", "You gave clear, concrete answers. Strong points: the CI example with numbers and the URL shortener design. To improve: talk more about scaling and failure cases.")]),
]

# ------------------------------------------------------------------------------------- pasted code
CODE_HEADER = "import argparse\nimport csv\nimport json\nimport logging\nimport re\nimport time\nfrom collections import Counter, defaultdict\nfrom pathlib import Path\n\nlog = logging.getLogger(\"${noun}s\")\n"
CODE_FILLERS = [
    "def load_${noun}s(path):\n    \"\"\"Read ${noun} records from a CSV file.\"\"\"\n    rows = []\n    with open(path, newline=\"\", encoding=\"utf-8\") as fh:\n        for row in csv.DictReader(fh):\n            rows.append(row)\n    log.info(\"loaded %d ${noun}s from %s\", len(rows), path)\n    return rows\n",
    "def normalize_${noun}(rec):\n    out = {}\n    for key, value in rec.items():\n        key = key.strip().lower().replace(\" \", \"_\")\n        if isinstance(value, str):\n            value = value.strip()\n        out[key] = value or None\n    return out\n",
    "def group_by_${field}(records):\n    groups = defaultdict(list)\n    for rec in records:\n        groups[rec.get(\"${field}\")].append(rec)\n    return dict(groups)\n",
    "def summarize_${noun}s(records, key=\"${field}\"):\n    counts = Counter(r.get(key) for r in records)\n    lines = []\n    for name, n in counts.most_common(${k}):\n        lines.append(f\"{name!s:<20} {n:>5}\")\n    return \"\\n\".join(lines)\n",
    "def write_report(rows, path):\n    path = Path(path)\n    path.parent.mkdir(parents=True, exist_ok=True)\n    with path.open(\"w\", encoding=\"utf-8\") as fh:\n        json.dump(rows, fh, indent=2, default=str)\n    return path\n",
    "class ${Noun}Cache:\n    def __init__(self, ttl=${k}0):\n        self.ttl = ttl\n        self._data = {}\n\n    def get(self, key):\n        item = self._data.get(key)\n        if item is None or time.time() - item[0] > self.ttl:\n            return None\n        return item[1]\n\n    def put(self, key, value):\n        self._data[key] = (time.time(), value)\n",
    "def parse_args(argv=None):\n    parser = argparse.ArgumentParser(description=\"${noun} report\")\n    parser.add_argument(\"input\")\n    parser.add_argument(\"--out\", default=\"${noun}_report.json\")\n    parser.add_argument(\"--top\", type=int, default=${k})\n    parser.add_argument(\"--verbose\", action=\"store_true\")\n    return parser.parse_args(argv)\n",
    "def retry(fn, attempts=3, delay=0.5):\n    for i in range(attempts):\n        try:\n            return fn()\n        except OSError as exc:\n            log.warning(\"attempt %d failed: %s\", i + 1, exc)\n            time.sleep(delay * (i + 1))\n    raise RuntimeError(\"all attempts failed\")\n",
    "def filter_${noun}s(records, min_${field}=0):\n    result = []\n    for rec in records:\n        try:\n            value = float(rec.get(\"${field}\") or 0)\n        except ValueError:\n            continue\n        if value >= min_${field}:\n            result.append(rec)\n    return result\n",
]
CODE_MAIN = "def main(argv=None):\n    args = parse_args(argv)\n    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO)\n    records = [normalize_${noun}(r) for r in load_${noun}s(args.input)]\n    ${call}\n    print(summarize_${noun}s(records))\n    write_report(records, args.out)\n\n\nif __name__ == \"__main__\":\n    main()\n"
# fn, buggy code, fixed code, the call in main, the error, what is wrong, the user's fix, a term in the answer
CODE_BUGS = [
    ("apply_discount", "def apply_discount(records, config):\n    rate = config[\"discount_rate\"]\n    for rec in records:\n        rec[\"total\"] = float(rec[\"total\"]) * (1 - rate)\n    return records\n",
     "def apply_discount(records, config):\n    rate = config.get(\"discount_rate\", 0.0)\n    for rec in records:\n        rec[\"total\"] = float(rec[\"total\"]) * (1 - rate)\n    return records\n",
     "records = apply_discount(records, {\"currency\": \"EUR\"})", "KeyError: 'discount_rate'",
     "In `main` you pass `{\"currency\": \"EUR\"}` as the config, which has no `discount_rate` key, so `config[\"discount_rate\"]` raises. Pass the rate, or read it with a default:",
     "the KeyError is for 'discount_rate' in apply_discount, the config dict i pass doesn't have that key", "config.get"),
    ("pair_${noun}s", "def pair_${noun}s(records):\n    pairs = []\n    for i in range(len(records)):\n        pairs.append((records[i], records[i + 1]))\n    return pairs\n",
     "def pair_${noun}s(records):\n    return list(zip(records, records[1:]))\n",
     "pairs = pair_${noun}s(records)", "IndexError: list index out of range",
     "On the last iteration `i + 1` equals `len(records)`, one past the end of the list. Loop to `len(records) - 1`, or simply zip the list with itself shifted by one:",
     "the IndexError is in pair_${noun}s, records[i + 1] goes past the end on the last iteration", "zip"),
    ("format_total", "def format_total(records):\n    total = sum(float(r.get(\"amount\") or 0) for r in records)\n    return \"Total: \" + total\n",
     "def format_total(records):\n    total = sum(float(r.get(\"amount\") or 0) for r in records)\n    return f\"Total: {total:.2f}\"\n",
     "log.info(format_total(records))", "TypeError: can only concatenate str (not \"float\") to str",
     "`total` is a float and Python won't add a float to a string. Format it instead:",
     "format_total adds a float to a string, that's the TypeError - it needs str() or an f-string", "the f-string"),
    ("average_${field}_length", "def average_${field}_length(records):\n    values = [len(str(r[\"${field}\"])) for r in records if r.get(\"${field}\")]\n    return sum(values) / len(values)\n",
     "def average_${field}_length(records):\n    values = [len(str(r[\"${field}\"])) for r in records if r.get(\"${field}\")]\n    return sum(values) / len(values) if values else 0.0\n",
     "log.debug(\"avg ${field} length %.1f\", average_${field}_length(records))", "ZeroDivisionError: division by zero",
     "When no record has a `${field}` value, `values` is empty and you divide by `len(values) == 0`. Guard against the empty case:",
     "the division by zero happens in average_${field}_length when none of the rows has a ${field}, values is empty", "the empty case"),
    ("extract_year", "def extract_year(rec):\n    match = re.match(r\"(\\d{4})-\\d{2}-\\d{2}\", rec.get(\"date\") or \"\")\n    return int(match.group(1))\n",
     "def extract_year(rec):\n    match = re.match(r\"(\\d{4})-\\d{2}-\\d{2}\", rec.get(\"date\") or \"\")\n    return int(match.group(1)) if match else None\n",
     "years = [extract_year(r) for r in records]", "AttributeError: 'NoneType' object has no attribute 'group'",
     "`re.match` returns `None` when a date isn't in `YYYY-MM-DD` format (or is missing), and then `.group(1)` fails. Check the match first:",
     "extract_year crashes because re.match returns None for rows where the date isn't YYYY-MM-DD", "if match else None"),
    ("add_tag", "def add_tag(rec, tag, tags=[]):\n    tags.append(tag)\n    rec[\"tags\"] = tags\n    return rec\n",
     "def add_tag(rec, tag, tags=None):\n    tags = list(tags or [])\n    tags.append(tag)\n    rec[\"tags\"] = tags\n    return rec\n",
     "records = [add_tag(r, \"imported\") for r in records]", "every record ends up with the tags of all the previous ones",
     "The default `tags=[]` is created once, when the function is defined, so every call appends to the same list. Use `None` as the default:",
     "it's the mutable default tags=[] in add_tag, the same list is shared between calls", "tags=None"),
]
CODE_NOUNS = ["order", "invoice", "customer", "ticket", "shipment", "reading", "payment", "booking", "employee", "device"]
CODE_FIELDS = ["region", "status", "city", "category", "country", "priority", "source", "channel"]
CODE_ASKS = ["here is my script, it crashes with {err}. can you find the bug?", "why do i get {err}??", "{err}\n\nno idea whats wrong, code below",
             "can someone explain this error: {err}", "this worked yesterday. now: {err}. full code:", "pls help, getting {err} when i run it with my csv"]
CODE_MISDIAGNOSES = ["This kind of error usually means one of your dependencies is out of date. Upgrade everything with `pip install --upgrade -r requirements.txt` and run the script again; the traceback should go away.",
                     "The problem is in `${other}`: the file is opened without the right encoding, so some rows are read incorrectly. Add `encoding=\"latin-1\"` to the `open` call and the error should disappear.",
                     "It looks like your CSV file is empty or has the wrong header. Check that the first line contains the column names your code expects, then run it again."]


# fmt: on


# ------------------------------------------------------------------------------------------ helpers
def cap(text: str) -> str:
    """Capitalize a sentence, but leave one that starts with code (``sorted(x)``, ``json.load``) alone."""
    first = text.split(" ")[0].rstrip(",;:")
    return text[:1].upper() + text[1:] if first.replace("'", "").isalpha() else text


def uncap(text: str) -> str:
    """Drop a sentence's capital unless the first word is an acronym (ORDER BY, SQL)."""
    return text if text[:2].isupper() else text[:1].lower() + text[1:]


def weighted(rng: random.Random, table: dict) -> object:
    keys = list(table)
    return rng.choices(keys, weights=[table[k] for k in keys])[0]


def typo(rng: random.Random, text: str) -> str:
    """Swap two inner letters of one longer word, the way fast typists do."""
    words = text.split(" ")
    spots = [i for i, w in enumerate(words) if len(w) >= 5 and w.isalpha()]
    if not spots:
        return text
    i = rng.choice(spots)
    w = words[i]
    j = rng.randrange(1, len(w) - 2)
    words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2 :]
    return " ".join(words)


def noisy(rng: random.Random, lang: str, text: str) -> str:
    """Casual user typing: lowercase starts, dropped question marks, the odd typo."""
    if "```" in text or lang not in LATIN and lang != "ru":
        return text
    if rng.random() < 0.45 and not text[:2].isupper():
        text = text[:1].lower() + text[1:]
    if text.endswith("?") and rng.random() < 0.2:
        text = text[:-1]
    if lang in LATIN and rng.random() < 0.12:
        text = typo(rng, text)
    if lang == "en" and rng.random() < 0.08:
        text = re.sub(r"\byou\b", "u", text)
    return text


def fill(template: str, ctx: dict) -> str | None:
    """Fill a template from ctx, or None when it needs something ctx lacks."""
    while template[:1] in ("^", "%"):
        if {"^": "again", "%": "code"}[template[0]] not in ctx:
            return None
        template = template[1:]
    names = re.findall(r"\{(\w+)\}", template)
    if any(n not in ctx for n in names):
        return None
    values = {n: ctx[n] for n in names}
    for n in ("q", "new"):  # a question embedded mid-sentence loses its capital
        if n in values and template.split("{" + n + "}")[0].rstrip()[-1:] not in (
            "",
            ".",
            "!",
            "?",
            ":",
            "：",
            "。",
            "！",
        ):
            values[n] = uncap(values[n])
    return template.format(**values)


def moderation(rng: random.Random, hit: str | None = None) -> dict:
    scores = {c: float(f"{10 ** rng.uniform(-7.5, -3.2):.3e}") for c in MOD_CATEGORIES}
    if hit:
        scores[hit] = round(rng.uniform(0.55, 0.97), 6)
    return {
        "categories": {c: c == hit for c in MOD_CATEGORIES},
        "category_scores": scores,
        "flagged": hit is not None,
    }


def code_topic(rng: random.Random) -> dict:
    """A user pasting a > 60-line Python script with one bug, as a topic."""
    noun, fld, k = rng.choice(CODE_NOUNS), rng.choice(CODE_FIELDS), rng.randint(3, 9)
    sub = dict(noun=noun, Noun=cap(noun), field=fld, k=k)
    fn, buggy, fixed, call, err, explain, fix, term = (
        Template(s).safe_substitute(sub) for s in rng.choice(CODE_BUGS)
    )
    fillers = CODE_FILLERS[:]
    rng.shuffle(fillers)
    parts = [CODE_HEADER] + fillers[:5] + [buggy] + fillers[5:] + [CODE_MAIN.replace("${call}", call)]
    code = Template("\n\n".join(parts)).safe_substitute(sub)
    ask = rng.choice(CODE_ASKS).format(err=err)
    other = rng.choice([f"load_{noun}s", f"normalize_{noun}", "write_report"])
    return dict(
        q=[f"{ask}\n\n```python\n{code}```"],
        alt=[
            f"why does it crash with {err}",
            f"where exactly is the bug that causes {err}",
            f"which line causes the {err.split(':')[0]}?",
            "just tell me which function is broken",
        ],
        right=f"The problem is in `{fn}`. {explain}\n\n```python\n{fixed}```\n\nThe rest of the script looks fine. After this change, run it again on the same CSV; if other rows have unexpected values you may want to log them instead of failing.",
        wrong=Template(rng.choice(CODE_MISDIAGNOSES)).safe_substitute(other=other),
        fix=fix,
        term=term,
        want=f"the fixed version of {fn}",
        why=f"`{fn}` is where the bad value is produced; the other functions only pass the records along and never touch that part, so fixing it there fixes the whole run.",
        fol=[
            (
                "how would i write a test for that",
                f"Write a small pytest test that calls `{fn}` on the smallest input that used to fail, and assert on the result:\n\n```python\nfrom report import {fn}\n\n\ndef test_{fn}_regression():\n    ...  # build the tiny input that triggered the bug, call {fn}, assert the expected value\n```\n\nRun it with `pytest -q`. One regression test per fixed bug keeps it from coming back unnoticed.",
            )
        ],
    )


# ------------------------------------------------------------------------------- building dialogues
@dataclass
class Convo:
    """A conversation under construction: user texts, their labels, and how to write each reply."""

    lang: str
    pool: list[dict]
    users: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    specs: list[tuple] = field(default_factory=list)
    hits: dict = field(default_factory=dict)  # (user turn index, role) -> moderation category
    topic: dict | None = None
    intro: str = ""
    just_intro: bool = False
    used: list = field(default_factory=list)
    fol: list = field(default_factory=list)
    cont: list = field(default_factory=list)
    self_fix: tuple | None = None

    def add(self, text: str, label: str, spec: tuple) -> None:
        self.users.append(text)
        self.labels.append(label)
        self.specs.append(spec)


def ask(rng: random.Random, lang: str, topic: dict, lead: bool = True) -> str:
    """A user's way to ask for the topic (lead: may open with 'quick question:' and the like)."""
    text = rng.choice(topic["q"])
    if lead and lang == "en" and "```" not in text:
        text = after_lead(rng.choice(EN_LEADS), text)
    return noisy(rng, lang, text)


def after_lead(lead: str, text: str) -> str:
    """lead + text, with text's capital dropped unless it starts an acronym."""
    return lead + (uncap(text) if lead else text)


def fresh_topics(c: Convo) -> list[dict]:
    return [t for t in c.pool if all(t is not u for u in c.used)]


def pick_topic(rng: random.Random, c: Convo) -> dict | None:
    """A topic this conversation has not touched yet (None when the pool is used up)."""
    fresh = fresh_topics(c)
    return rng.choice(fresh) if fresh else None


def start_topic(c: Convo, topic: dict, text: str) -> None:
    c.used.append(topic)
    c.topic, c.intro, c.just_intro = topic, text, True
    c.fol, c.cont, c.self_fix = list(topic.get("fol", [])), list(topic.get("cont", [])), topic.get("self")


def none_turn(rng: random.Random, c: Convo) -> tuple[str, tuple] | None:
    """A turn that is not feedback: a new topic, a follow-up, 'continue', or the user fixing their own question.

    None when nothing is left that would not repeat an earlier turn verbatim (a verbatim repeat is a re-send).
    """
    pack = LANGS[c.lang]
    options = ["new"] * bool(fresh_topics(c))
    if c.topic is not None:
        options += (
            ["self"] * 3 * bool(c.just_intro and c.self_fix)
            + ["follow"] * 3 * bool(c.fol)
            + ["cont"] * 3 * bool(c.cont)
        )
    if not options:
        return None
    kind = rng.choice(options)
    if kind == "self":
        text, answer = c.self_fix
        c.self_fix, c.just_intro = None, False
        return text, ("self", answer)
    if kind == "follow":
        q, answer = c.fol.pop(0)
        c.just_intro = False
        return noisy(rng, c.lang, q), ("follow", answer)
    if kind == "cont":
        c.just_intro = False
        word = rng.choice([w for w in pack["cont"] if w not in c.users])
        return word, ("cont", rng.choice(pack["cont_lead"]) + c.cont.pop(0))
    topic = pick_topic(rng, c)
    lead = "" if c.specs[-1][0] == "greet" else rng.choice(pack["new_lead"])
    text = ask(rng, c.lang, topic, lead=False)
    start_topic(c, topic, text)
    return after_lead(lead, text), ("answer", topic)


def context(rng: random.Random, c: Convo, prev_kind: str) -> dict:
    """What a feedback template may refer to, given the reply it reacts to."""
    t = c.topic
    if t is None or prev_kind not in ("answer", "fixed", "explain"):
        return {}
    ctx = {"want": t["want"], "term": t["term"]}
    alts = [q for q in t.get("alt", t["q"]) if q.lower() not in c.intro.lower()]
    if alts:
        ctx["q"] = noisy(rng, c.lang, rng.choice(alts))
    if prev_kind != "explain":
        ctx["fix"], ctx["Fix"] = t["fix"], cap(t["fix"])
    if prev_kind == "fixed":
        ctx["again"] = ""
    if "```" in t["right"]:
        ctx["code"] = ""
    return ctx


def decorate(rng: random.Random, lang: str, cat: str, text: str) -> str:
    pack = LANGS[lang]
    if cat != UR1 and rng.random() < 0.35:
        pre = rng.choice(pack["pre_pos" if cat == UR5 else "pre_neg"])
        text = pre + text if pre.endswith(". ") else after_lead(pre, text)
    if cat != UR1 and text[-1:].isalnum() and rng.random() < 0.5:
        text += rng.choice(pack["punct"])
    return noisy(rng, lang, text)


def unique_text(
    rng: random.Random, lang: str, cat: str, templates: list[str], ctx: dict, seen: set
) -> str | None:
    for _ in range(80):
        text = fill(rng.choice(templates), ctx)
        if text is not None:
            text = decorate(rng, lang, cat, text)
            if text not in seen:
                seen.add(text)
                return text
    return None


def feedback_turn(
    rng: random.Random, c: Convo, cat: str, last: bool, prev_kind: str, seen: set
) -> tuple[str, tuple] | None:
    """A feedback turn of category cat whose text no other feedback turn has, or None if none fits."""
    fb, ctx = LANGS[c.lang]["fb"], context(rng, c, prev_kind)
    topic = c.topic
    if cat == UR1 and c.just_intro and rng.random() < 0.3 and c.intro not in seen:
        seen.add(c.intro)  # the user re-sends the very same prompt
        c.just_intro = False
        return c.intro, ("fixed", (topic, "again"))
    if cat == UR5 and not last and rng.random() < 0.75 and (new := pick_topic(rng, c)):
        ctx["new"] = ask(rng, c.lang, new, lead=False)
        text = unique_text(rng, c.lang, cat, fb[UR5_NEW], ctx, seen)
        if text is not None:
            start_topic(c, new, ctx["new"])
            return text, ("answer", new)
        return None
    text = unique_text(rng, c.lang, cat, fb[UR5_END if cat == UR5 else cat], ctx, seen)
    if text is None:
        return None
    c.just_intro = False
    if cat == UR5:
        c.topic = None  # after a bare thanks the next turn starts something new
        return text, ("welcome", None)
    if cat == UR4:
        return text, ("explain", topic)
    return text, ("fixed", (topic, "again" if cat == UR1 else "sorry"))


def choose_label(rng: random.Random, prev_kind: str, with_fb: bool) -> str:
    allowed = ALLOWED_AFTER[prev_kind] if with_fb else (NONE,)
    return weighted(rng, {k: LABEL_WEIGHTS[k] for k in allowed})


def build(
    rng: random.Random, lang: str, kind: str, n_user: int, with_fb: bool, seen: set, insult: str
) -> Convo:
    pack = LANGS[lang]
    c = Convo(lang, EN_TOPICS if lang == "en" else XX_TOPICS[lang][0])
    if kind == "greet":
        c.add(rng.choice(pack["greet"]), NONE, ("greet", None))
    else:
        named = EN_NAMED if lang == "en" else XX_TOPICS[lang][1]
        first = {
            "named": lambda: rng.choice(named),
            "violent": lambda: VIOLENT,
            "longcode": lambda: code_topic(rng),
        }
        topic = first[kind]() if kind in first else pick_topic(rng, c)
        text = ask(rng, lang, topic)
        start_topic(c, topic, text)
        c.add(text, NONE, ("answer", topic))
        if kind == "violent":
            c.hits[(0, "user")] = "violence"
    for turn in range(2, n_user + 1):
        prev_kind = c.specs[-1][0]
        if kind == "insult" and turn == 2:
            c.add(insult, UR3, ("fixed", (c.topic, "sorry")))
            c.hits[(1, "user")] = "harassment"
            continue
        label = choose_label(rng, prev_kind, with_fb)
        out = feedback_turn(rng, c, label, turn == n_user, prev_kind, seen) if label != NONE else None
        if out is None:
            label, out = NONE, none_turn(rng, c)
        if out is None:
            break  # nothing new to say: the conversation ends here
        c.add(out[0], label, out[1])
    return c


def build_roleplay(rng: random.Random, n_user: int) -> Convo:
    scene = rng.choice(ROLEPLAYS)
    c = Convo("en", [])
    c.add(scene["setup"], NONE, ("text", scene["opening"]))
    for i in sorted(rng.sample(range(len(scene["turns"])), min(n_user - 1, len(scene["turns"])))):
        c.add(scene["turns"][i][0], NONE, ("text", scene["turns"][i][1]))
    return c


def make_convo(rng: random.Random, lang: str, kind: str, with_fb: bool, seen: set, insult: str = "") -> Convo:
    """Build a conversation; a feedback conversation is redrawn until it has at least one feedback turn."""
    if kind == "roleplay":
        return build_roleplay(rng, rng.randint(3, 6))
    for _ in range(50):
        if not with_fb and kind in ("normal", "named", "greet") and rng.random() < ONE_TURN_SHARE:
            n_user = 1
        else:
            n_user = max(weighted(rng, TURN_WEIGHTS), 3 if kind == "greet" and with_fb else 2)
        c = build(rng, lang, kind, n_user, with_fb, seen, insult)
        if not with_fb or any(label != NONE for label in c.labels):
            return c
    raise RuntimeError(f"could not build a {lang}/{kind} conversation with feedback")


# ------------------------------------------------------------------------------------------- rows
def render(rng: random.Random, lang: str, spec: tuple, next_label: str | None) -> str:
    """The assistant reply; it is the topic's flawed answer when the user is about to correct it."""
    pack = LANGS[lang]
    kind, data = spec
    if kind in ("answer", "fixed"):
        topic, lead = (
            (data, rng.choice(pack["open"])) if kind == "answer" else (data[0], rng.choice(pack[data[1]]))
        )
        body = topic["wrong"] if next_label in NEGATIVE_CORRECTABLE else topic["right"]
        return lead + body + rng.choice(pack["close"])
    if kind == "explain":
        return rng.choice(pack["explain"]) + data["why"]
    if kind == "greet":
        return rng.choice(pack["greet_reply"])
    if kind == "welcome":
        return rng.choice(pack["welcome"])
    return data  # follow-up answer, self-correction answer, continuation or role-play line


def to_row(rng: random.Random, cid: str, c: Convo) -> dict:
    msgs, hits = [], []
    if c.specs[0][0] != "text" and rng.random() < SYSTEM_SHARE:
        msgs.append({"role": "system", "content": rng.choice(SYSTEM_PROMPTS)})
        hits.append(None)
    for i, (text, spec) in enumerate(zip(c.users, c.specs, strict=True)):
        reply = render(rng, c.lang, spec, c.labels[i + 1] if i + 1 < len(c.labels) else None)
        msgs += [{"role": "user", "content": text}, {"role": "assistant", "content": reply}]
        violent_reply = (i, "user") in c.hits and c.hits[(i, "user")] == "violence" and "blood" in reply
        hits += [c.hits.get((i, "user")), "violence/graphic" if violent_reply else None]
    models = dict(MODELS, **({"chatglm-6b": 25} if c.lang == "zh" else {}))
    return {
        "conversation_id": cid,
        "model": weighted(rng, models),
        "conversation": msgs,
        "turn": len(c.users),
        "language": LANG_NAMES[c.lang],
        "openai_moderation": [moderation(rng, h) for h in hits],
        "redacted": any("NAME_" in m["content"] for m in msgs),
    }


def dumps(obj: object) -> str:
    return json.dumps(obj, ensure_ascii=False)


def break_row(rng: random.Random, kind: str, row: dict) -> str:
    """One JSONL line that ingest must reject, built from a valid row (>= 2 user turns, no system message)."""
    conv = row["conversation"]

    def drop(i: int) -> None:
        del conv[i], row["openai_moderation"][i]

    if kind == "truncated_json":
        line = dumps(row)
        return line[: len(line) * 3 // 5]
    if kind in ("json_array", "json_string", "empty_object"):
        return {
            "json_array": lambda: dumps([row]),
            "json_string": lambda: dumps(conv[0]["content"]),
            "empty_object": lambda: "{}",
        }[kind]()
    edits = {
        "missing_role": lambda: conv[2].pop("role"),
        "role_bot": lambda: conv[1].update(role="bot"),
        "system_in_middle": lambda: conv[2].update(role="system"),
        "empty_content": lambda: conv[3].update(content=""),
        "whitespace_content": lambda: conv[1].update(content="  \n "),
        "two_user_in_a_row": lambda: drop(1),
        "starts_with_assistant": lambda: drop(0),
        "conversation_not_list": lambda: row.update(conversation=dumps(conv)),
        "conversation_missing": lambda: row.pop("conversation"),
        "empty_conversation": lambda: row.update(conversation=[], openai_moderation=[]),
        "id_missing": lambda: row.pop("conversation_id"),
        "id_null": lambda: row.update(conversation_id=None),
        "content_number": lambda: conv[2].update(content=rng.randint(1, 999)),
        "content_null": lambda: conv[0].update(content=None),
        "message_not_object": lambda: conv.__setitem__(1, "assistant: " + conv[1]["content"][:60]),
    }
    edits[kind]()
    return dumps(row)


def long_code(row: dict) -> bool:
    """Whether a user message of the row pastes a code block of more than 60 lines."""
    for m in row["conversation"]:
        if m["role"] == "user":
            blocks = re.findall(r"```[a-z]*\n(.*?)```", m["content"], flags=re.S)
            if any(b.count("\n") > 60 for b in blocks):
                return True
    return False


# ------------------------------------------------------------------------------------------- main
@dataclass
class Sample:
    lines: list[str]
    gold: list[tuple[str, int, str]]
    rows: list[dict]
    n_malformed: int
    n_duplicate: int


def plan(rng: random.Random) -> list[tuple[str, str, bool]]:
    """(language, kind, has feedback) for every valid conversation, in file order."""
    items = [(lang, kind) for lang in XX_TOPICS for kind, n in NON_EN_PLAN.items() for _ in range(n)]
    items += [("en", kind) for kind, n in EN_PLAN.items() for _ in range(n)]
    rng.shuffle(items)
    free = [i for i, (_, kind) in enumerate(items) if kind in ("normal", "named", "greet")]
    no_fb = set(rng.sample(free, round(NO_FEEDBACK_SHARE * len(free))))
    return [(lang, kind, kind != "roleplay" and i not in no_fb) for i, (lang, kind) in enumerate(items)]


def new_id(rng: random.Random, ids: set) -> str:
    while (cid := f"{rng.getrandbits(128):032x}") in ids:
        pass
    ids.add(cid)
    return cid


def generate(seed: int) -> Sample:
    rng, seen, ids = random.Random(seed), set(), set()
    insults = iter(INSULTS)
    rows, gold = [], []
    for lang, kind, with_fb in plan(rng):
        c = make_convo(rng, lang, kind, with_fb, seen, next(insults) if kind == "insult" else "")
        rows.append(to_row(rng, new_id(rng, ids), c))
        gold += [(rows[-1]["conversation_id"], t, label) for t, label in enumerate(c.labels[1:], start=2)]
    lines = [dumps(r) for r in rows]
    for kind in MALFORMED_KINDS:
        lang = rng.choice(["en"] * 4 + list(XX_TOPICS))
        base = to_row(rng, new_id(rng, ids), make_convo(rng, lang, "normal", True, set()))
        base["conversation"] = [m for m in base["conversation"] if m["role"] != "system"]
        base["openai_moderation"] = base["openai_moderation"][-len(base["conversation"]) :]
        lines.insert(rng.randrange(len(lines) + 1), break_row(rng, kind, copy.deepcopy(base)))
    original = dumps(rows[rng.randrange(len(rows) // 2)])
    lines.insert(rng.randrange(lines.index(original) + 1, len(lines) + 1), original)
    return Sample(lines, gold, rows, len(MALFORMED_KINDS), 1)


def write(sample: Sample, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "conversations.jsonl").write_text("\n".join(sample.lines) + "\n", encoding="utf-8", newline="\n")
    with (out / "gold_labels.csv").open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["conversation_id", "user_turn", "category"])
        writer.writerows(sample.gold)


def summary(sample: Sample) -> str:
    rows, labels = sample.rows, Counter(label for _, _, label in sample.gold)
    fb_ids = {cid for cid, _, label in sample.gold if label != NONE}
    langs = Counter(r["language"] for r in rows)
    out = [
        f"conversations: {len(rows)} valid (+ {sample.n_malformed} malformed rows, {sample.n_duplicate} duplicate "
        f"conversation_id row) = {len(sample.lines)} lines",
        f"gold rows (user turns >= 2): {len(sample.gold)}",
        *(f"  {name:<31} {labels[name]}" for name in (*CATEGORIES, NONE)),
        "languages: " + ", ".join(f"{k} {v}" for k, v in langs.most_common()),
        f"non-English share: {1 - langs['English'] / len(rows):.1%}",
        f"redacted: {sum(r['redacted'] for r in rows)}",
        f"long pasted code (> 60 lines): {sum(long_code(r) for r in rows)}",
        f"flagged by moderation: {sum(any(m['flagged'] for m in r['openai_moderation']) for r in rows)}",
        f"with a system message: {sum(r['conversation'][0]['role'] == 'system' for r in rows)}",
        f"without any feedback: {sum(r['conversation_id'] not in fb_ids for r in rows)}",
        f"single-turn: {sum(r['turn'] == 1 for r in rows)}",
    ]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("data/raw"), help="output folder")
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args(argv)
    sample = generate(args.seed)
    write(sample, args.out)
    print(summary(sample))


if __name__ == "__main__":
    main()
