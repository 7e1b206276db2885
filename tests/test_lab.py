"""`make lab`: JupyterLab on 127.0.0.1 with the project's kernel; started, asked, stopped."""
import json, os, re, signal, socket, subprocess, time, urllib.error, urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


# straight to the local server: `urlopen`'s shared opener keeps the proxies of the environment it was first used in
# (a test that makes the network unreachable sets them to a closed port), and a local server needs none
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def get(url:str):
    with DIRECT.open(url, timeout=30) as r: return r.status, json.loads(r.read())  # a busy machine answers late


def test_make_lab_serves_the_artsim_kernel(tmp_path):
    port, token = free_port(), 'artsim-test-token'
    env = {**os.environ, 'MAKEFLAGS': '', 'JUPYTER_RUNTIME_DIR': str(tmp_path/'runtime')}
    cmd = ['make', '--no-print-directory', '-o', '.venv/.artsim-installed', 'lab', f'LAB_PORT={port}',
           f'LAB_ARGS=--IdentityProvider.token={token}']
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=open(tmp_path/'lab.log', 'w'), stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        deadline, status, base = time.time() + 120, None, None
        while time.time() < deadline and proc.poll() is None:
            # the port the server says it listens on: another process (a kernel of a test beside this one) may have
            # taken the free one in between, and Jupyter then moves to the next
            if base is None and (m := re.search(r'http://127\.0\.0\.1:(\d+)/', (tmp_path/'lab.log').read_text())):
                port = int(m.group(1)); base = f'http://127.0.0.1:{port}'
            if base is None: time.sleep(0.5); continue
            try: status = get(f'{base}/api/status?token={token}'); break
            except (urllib.error.URLError, ConnectionError, OSError): time.sleep(0.5)
        assert status and status[0] == 200, (tmp_path/'lab.log').read_text()[-2000:]
        code, specs = get(f'{base}/api/kernelspecs?token={token}')
        assert 'artsim' in specs['kernelspecs'], sorted(specs['kernelspecs'])
        assert specs['default'] == 'artsim'
        assert specs['kernelspecs']['artsim']['spec']['display_name'] == 'Python (artsim)'
        code, nbs = get(f'{base}/api/contents/nbs?token={token}')  # the server's root is the checkout
        assert 'index.ipynb' in {c['name'] for c in nbs['content']}
        try: get(f'{base}/api/kernelspecs')
        except urllib.error.HTTPError as e: assert e.code == 403   # no token, no answer
        else: raise AssertionError('the server answered without its token')
    finally:
        if proc.poll() is None: os.killpg(proc.pid, signal.SIGTERM)
        try: proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL); proc.wait()
    with socket.socket() as s:
        assert s.connect_ex(('127.0.0.1', port)) != 0, 'JupyterLab still listens after it was stopped'
