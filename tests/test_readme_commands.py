"""The README's commands, run as a user types them, and what they print held to what the README shows: "What it costs,
before paying for it" (`--plan` of the full preset, of a thesis-sized run, of the demo before and after `make demo`),
"Your own paintings" (`--plan` of a folder too small for the batch size), "From the command line" (artsim_compare,
artsim_index and artsim_search on the demo's images), "A scale of your own" (artsim_calibrate on 18 photos,
artsim_compare of two photos on the shipped scale and on theirs) and "The dataset, exported" (artsim_export's line).
Each runs in a folder of its own that holds the demo run as runs/demo, so nothing is written into the clone. The
network's numbers may move within the README's spread for one pair's network score (artsim.claims.pair_spread,
for how the run computed: the column a transcript prints them in is headed `siamese...`, or the words before them
on their line name the network); every other number, and every word, is the README's, but for
the seconds a command took and the size of files holding the network's scores."""
import os, re, subprocess
from pathlib import Path
import pytest

from artsim.claims import how_computed, pair_spread, pipe_table
from artsim.docs import report_section
from artsim.runs import Run
from conftest import user_env
from miniatures import make_own_folder
from test_reproduce import ROOT

pytestmark = pytest.mark.claims   # the demo run's model and minutes of work: make check-claims runs it after make demo

README = (ROOT/'README.md').read_text(encoding='utf-8')
RUN = ROOT/os.environ.get('ARTSIM_CLAIMS_RUN', 'runs/demo')   # make check-claims sets it to its CLAIMS_RUN
NUMBER = re.compile(r'-?\d+(?:\.\d+)?')
SECONDS = re.compile(r'\(\d+(?:\.\d+)? s\)$')   # how long a command took, at the end of its line
LEARNED = ('siamese', "network's")   # from here on a line's numbers are the network's


def section(heading:str) -> str:
    "The README's text under `heading`, up to its next `## ` heading."
    body = report_section(README, heading)
    assert body is not None, f'the README has no {heading!r}'
    return body


def blocks(text:str, lang:str) -> list:
    "The fenced code blocks of `text` with this info string ('' for a command's output)."
    return [b for l, b in re.findall(r'^```(\w*)\n(.*?)^```$', text, re.S | re.M) if l == lang]


@pytest.fixture(scope='module')
def trained() -> float:
    "How far the network's score of one pair may stray from the README's, for how the demo run computed."
    if not (RUN/'report.md').is_file(): pytest.fail(f'no demo run in {RUN}: make demo first (or set ARTSIM_CLAIMS_RUN)')
    return pair_spread(README)[how_computed(Run(RUN).config['numerics'])]


def as_typed(folder:Path, commands:str) -> subprocess.CompletedProcess:
    "Run the README's commands with bash from `folder`, with the clone's .venv there and on PATH, as a user's shell."
    if not (folder/'.venv').exists(): (folder/'.venv').symlink_to(ROOT/'.venv')
    venv = ROOT/'.venv'   # as `source .venv/bin/activate` leaves the shell
    env = user_env(PATH=f"{venv/'bin'}{os.pathsep}{os.environ['PATH']}", VIRTUAL_ENV=str(venv))
    return subprocess.run(['bash', '-eo', 'pipefail', '-c', commands], cwd=folder, env=env, capture_output=True,
                          text=True, timeout=1200)


def in_a_folder_with_the_demo_run(tmp_path:Path, commands:str) -> str:
    "Run the README's commands with bash from a folder holding the demo run as runs/demo and .venv; their stdout."
    if not (tmp_path/'runs').exists():
        (tmp_path/'runs').mkdir()
        (tmp_path/'runs'/'demo').symlink_to(RUN.resolve())
    r = as_typed(tmp_path, commands)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r.stdout


def differences(stated:str, made:str, trained:float, columns:list|None=None) -> list:
    """Where a README line differs from the printed one: its words, a number, or one of the network's numbers (after
    'siamese' or "network's" on the line, or under a column `columns` heads `siamese...`) by more than `trained`."""
    if columns and len(stated.split()) == len(made.split()) == len(columns):   # a row of a ranked table
        return [d for h, a, b in zip(columns, stated.split(), made.split())
                for d in differences(f'{h} {a}' if h.startswith('siamese') else a,
                                     f'{h} {b}' if h.startswith('siamese') else b, trained)]
    split = lambda s: (NUMBER.split(s), [float(x) for x in NUMBER.findall(s)])
    (wa, na), (wb, nb) = split(stated), split(made)
    if wa != wb or len(na) != len(nb): return [f'README {stated!r}, printed {made!r}']
    out, learned = [], False
    for words, x, y in zip(wa, na, nb):
        learned = learned or any(w in words.lower() for w in LEARNED)
        if abs(x - y) > (trained if learned else 0.) + 1e-9:
            out.append(f'README {stated!r}, printed {made!r}: {x:g} against {y:g}')
    return out


def line_differences(said:list, printed:list, trained:float) -> list:
    "`differences` of each shown line and the printed one, a ranked table's rows read under their header's columns."
    out, columns = [], None
    for a, b in zip(said, printed):
        a, b = SECONDS.sub('', a), SECONDS.sub('', b)
        first = a.split()[:1]
        out += differences(a, b, trained, None if first == ['rank'] else columns)
        if first == ['rank']: columns = a.split()
        elif not (first and first[0].isdigit()): columns = None   # the table has ended
    return out


def test_a_ranked_tables_network_column_may_move_its_other_columns_may_not():
    header, row = '  rank  combined   siamese  original', '     1     0.895     0.896  cityscape/cityscape-0001.png'
    assert line_differences([header, row], [header, row.replace('0.896', '0.820')], 0.08) == []
    assert len(line_differences([header, row], [header, row.replace('0.896', '0.800')], 0.08)) == 1
    assert len(line_differences([header, row], [header, row.replace('0.895', '0.896')], 0.08)) == 1
    assert len(line_differences([header, row], [header, row.replace('0001', '0002')], 0.08)) == 1
    assert len(line_differences([header, row], [header, row.replace('0.896', '0.820')], 0.)) == 1


def compare_blocks(out:str) -> list:
    "Each artsim_compare's rows as measure -> calibrated value, and its verdict line, in the order printed."
    found = []
    for part in out.split('A: ')[1:]:
        lines = part.splitlines()
        rows = {m.group(1): m.group(2) for l in lines if (m := re.match(r'  (\S+)\s+(-?\d\.\d\d)  ', l))}
        found.append((rows, lines[-1]))
    return found


def test_a_scale_of_your_own_prints_what_the_readme_shows(tmp_path, trained):
    text = section('### A scale of your own')
    out = in_a_folder_with_the_demo_run(tmp_path, blocks(text, 'sh')[0])
    shown = blocks(text, '')[0].strip().splitlines()
    printed = out.splitlines()[:len(shown)]
    bad = line_differences(shown, printed, trained)
    assert not bad, bad
    shipped, photos = compare_blocks(out)
    table = pipe_table(text, '| measure')
    assert set(table) - {'last line'} <= set(shipped[0]), (table, shipped[0])
    for measure, cells in table.items():
        for cell, (rows, last) in zip(cells, (shipped, photos)):
            if measure == 'last line': bad += differences(cell, last.split('): ')[0] + ')', trained)
            else: bad += differences(f'{measure} {NUMBER.search(cell).group()}', f'{measure} {rows[measure]}', trained)
    assert not bad, bad


def test_the_export_prints_what_the_readme_shows(tmp_path, trained):
    text = section('## The dataset, exported')
    out = in_a_folder_with_the_demo_run(tmp_path, blocks(text, 'sh')[0])
    shown = blocks(text, '')[0].strip()
    line = next(l for l in out.splitlines() if l.startswith('artsim_export: '))
    # the shards hold the network's scores: their size may move with them; the rest word for word
    size = re.compile(r'(\d+(?:\.\d+)?) MB')
    words = lambda s: size.sub('MB', SECONDS.sub('', s))
    assert differences(words(shown), words(line), 0.) == [], (shown, line)
    a, b = (float(size.search(s).group(1)) for s in (shown, line))
    assert abs(a - b) <= (0.2 if trained else 0.), (shown, line)   # 0.1 MB is the printed digit


def transcripts(text:str) -> list:
    "(commands, what the README shows they print): each `sh` block of `text` with the output block right after it."
    parts = re.findall(r'^```(\w*)\n(.*?)^```$\n*', text, re.S | re.M)
    return [(a, b) for (la, a), (lb, b) in zip(parts, parts[1:]) if la == 'sh' and lb == '']


def test_the_command_line_section_prints_what_the_readme_shows(tmp_path, trained):
    "Compare, index and search, in the README's order: every line as shown, but for the seconds a command took."
    shown = transcripts(section('## From the command line').split('\n### ')[0])   # not its subsection
    assert len(shown) == 3, shown
    bad = []
    for commands, said in shown:
        out = in_a_folder_with_the_demo_run(tmp_path, commands).splitlines()
        said = said.strip().splitlines()
        if len(out) != len(said): bad.append(f'{commands.splitlines()[0]}: {len(out)} lines printed, {len(said)} shown')
        bad += line_differences(said, out, trained)
    assert not bad, bad


def skip_where_cuda():
    "The README's plans are those of a machine without a CUDA GPU: with one, --plan adds the GPU's rates."
    import torch   # here, not when make test collects this module and leaves it out
    if torch.cuda.is_available(): pytest.skip('the README shows the plans of a machine without a CUDA GPU')


def test_the_full_presets_plans_print_what_the_readme_shows(tmp_path):
    "`--plan` of the full preset and of a thesis-sized run, before the download: every line as shown (nothing is run)."
    skip_where_cuda()
    shown = [(c, o) for c, o in transcripts(section('### What it costs, before paying for it')) if '...' not in o]
    assert [c.split('--run-dir ')[1].split()[0] for c, _ in shown] == ['/data/runs/full', '/data/runs/thesis200'], shown
    bad = []
    for commands, said in shown:
        out = in_a_folder_with_the_demo_run(tmp_path, commands).splitlines()
        said = said.strip().splitlines()
        if out != said: bad += [f'README {a!r}, printed {b!r}' for a, b in zip(said, out) if a != b] or \
                               [f'{len(out)} lines printed, {len(said)} shown']
    assert not bad, bad[:5]


def test_the_demo_plan_after_make_demo_prints_what_the_readme_shows(tmp_path):
    """`--plan` of the demo with the descriptors at another size, after `make demo`: each chapter's name, what it would
    do and why, and the two times, as shown (the README leaves each chapter's own lines out, as '...')."""
    skip_where_cuda()
    plans = transcripts(section('### What it costs, before paying for it'))
    (commands, said), = [(c, o) for c, o in plans if '...' in o]
    assert '--run-dir' not in commands, commands   # the demo's run directory, runs/demo: the folder's
    out = in_a_folder_with_the_demo_run(tmp_path, commands).splitlines()
    chapter, status = re.compile(r'^\d\d_\w+ +'), re.compile(r'^ +(done before|runs|may run)\b')
    shown = [chapter.match(l).group() + '...' if chapter.match(l) else l for l in out
             if chapter.match(l) or status.match(l) or l.startswith('time, all') or l.startswith('time of what')]
    assert shown == said.strip().splitlines(), '\n'.join(shown)


def test_the_plan_of_a_folder_too_small_for_bs_says_what_the_readme_shows(tmp_path):
    """"Your own paintings": `--plan` of the demo preset on a folder of 4 genres x 8 images stops before anything
    runs with the README's error, and writes nothing."""
    text = section('## Your own paintings')
    (commands, said), = [(c, o) for c, o in transcripts(text) if '--plan' in c]
    make_own_folder(tmp_path/'my_paintings')
    assert 'source_path=my_paintings' in commands and 'A folder of 4 genres with 8 images each' in text, commands
    r = as_typed(tmp_path, commands)
    assert r.returncode == 2 and r.stdout == '', (r.returncode, r.stdout[-3000:], r.stderr[-3000:])
    assert r.stderr.strip().splitlines()[-1] == said.strip(), r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ['.venv', 'my_paintings'], list(tmp_path.iterdir())


def test_the_demo_plan_counts_what_make_demo_makes(tmp_path):
    """"Checked on the demo": the counts and times the README gives for `--plan --preset demo` in a fresh clone (no
    run yet) are the plan's, and the counts are what the demo run holds."""
    import pandas as pd
    skip_where_cuda()
    text = ' '.join(section('### What it costs, before paying for it').split())
    claim = re.search(r'`artsim_reproduce --plan --preset demo` plans ([\d,]+) paintings, ([\d,]+) twins of them, '
                      r'([\d,]+) variants, ([\d,]+) images to describe and ([\d,]+) scored pairs.*? it estimates '
                      r'(\d+ min) \((\d+) s; 04: (\d+) s, 05: (\d+) s, 06: (\d+) s\)', text)
    assert claim, 'the README no longer says what --plan --preset demo plans'
    paintings, twins, variants, images, pairs, total, secs, t04, t05, t06 = claim.groups()
    r = as_typed(tmp_path, '.venv/bin/artsim_reproduce --plan --preset demo')   # no runs/ here, as in a fresh clone
    assert r.returncode == 0, r.stderr[-3000:]
    out = r.stdout
    lines = {m.group(1): m.group(2) for m in re.finditer(r'^(\d\d_\w+) +(.*)$', out, re.M)}
    assert lines['00_data'].startswith(f'{paintings} paintings in '), lines['00_data']
    assert f'= {variants} variants' in lines['01_generation'], lines['01_generation']
    assert lines['02_descriptors'].startswith(f'{images} images to describe (') and f' + {twins} twins)' in \
        lines['02_descriptors'], lines['02_descriptors']
    assert lines['03_similarity'].startswith(f'{pairs} pairs scored'), lines['03_similarity']
    assert f'time, all chapters: {total}' in out.splitlines(), out
    times = [int(t) for t in re.findall(r'^ +time: (\d+) s$', out, re.M)]
    assert len(times) == 8 and sum(times) == int(secs), times   # every chapter under a minute's 'N s'
    assert [times[4], times[5], times[6]] == [int(t04), int(t05), int(t06)], times
    n = lambda s: int(s.replace(',', ''))
    run = Run(RUN).path
    rows = lambda f: pd.read_parquet(run/f)
    scored = rows('similarity/pairs.parquet')
    made = (len(rows('data/manifest.parquet')), len(rows('data/twins.parquet')), int((scored.kind == 'positive').sum()),
            len(rows('features/images.parquet')), len(scored))
    assert made == tuple(map(n, (paintings, twins, variants, images, pairs))), made
