"""What `pip install .` gives: the exported modules and the presets, importable away from the checkout."""
import subprocess, sys, zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_installs_and_loads(tmp_path):
    r = subprocess.run([sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps', '--no-build-isolation', '-w', str(tmp_path), str(ROOT)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    whl = next(tmp_path.glob('artsim-*.whl'))
    names = set(zipfile.ZipFile(whl).namelist())
    assert {'artsim/__init__.py', 'artsim/data.py', 'artsim/runs.py', 'artsim/reproduce.py', 'artsim/presets.yaml', 'artsim/calibration.json'} <= names
    entry = [n for n in names if n.endswith('entry_points.txt')]
    assert entry and 'artsim_reproduce = artsim.reproduce:main' in zipfile.ZipFile(whl).read(entry[0]).decode()
    site = tmp_path/'site'
    r = subprocess.run([sys.executable, '-m', 'pip', 'install', '-q', '--no-deps', '--target', str(site), str(whl)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    code = ("import artsim, numpy as np; from artsim.runs import PRESETS\n"
            "assert artsim.__file__.startswith(%r), artsim.__file__\n"
            "assert {'demo', 'full'} <= set(PRESETS)\n"
            "print(artsim.load_image(np.zeros((3, 5, 3), np.uint8)).size)" % str(site))
    r = subprocess.run([sys.executable, '-c', code], cwd=tmp_path, env={'PYTHONPATH': str(site), 'PATH': '/usr/bin:/bin'},
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == '(5, 3)'
