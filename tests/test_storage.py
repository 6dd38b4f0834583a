"""Files on local disks and in buckets (genai_jax.storage): appending to objects, and a gs://
workdir this machine cannot reach failing in one line, fast, with nothing written."""

import os
import subprocess
import sys
import time

import pytest

from genai_jax import storage
from genai_jax.errors import UserError
from genai_jax.train import workdir as workdir_lib
from tests.conftest import REPO


@pytest.fixture
def no_credentials(monkeypatch, tmp_path):
  """A machine with no Google Cloud credentials: no key, no gcloud login, not a Google VM."""
  for var in ("GOOGLE_APPLICATION_CREDENTIALS", "GCE_METADATA_HOST", "GCE_METADATA_IP"):
    monkeypatch.delenv(var, raising=False)
  monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
  monkeypatch.setattr(storage, "_DMI_PRODUCT", str(tmp_path / "product_name"))
  storage._check_gcs.cache_clear()
  yield
  storage._check_gcs.cache_clear()


def test_a_gs_workdir_without_credentials_is_one_line_naming_the_fix(no_credentials):
  t = time.perf_counter()
  with pytest.raises(UserError) as e:
    workdir_lib.check_writable("gs://genai-jax-no-such-bucket/runs/x")
  assert time.perf_counter() - t < 2.0
  msg = str(e.value)
  assert "\n" not in msg and msg.startswith("gs://genai-jax-no-such-bucket:")
  assert ("gcloud auth application-default login" in msg and "GOOGLE_APPLICATION_CREDENTIALS" in msg
          or "pip install" in msg), msg  # without gcsfs the missing package comes first
  with pytest.raises(UserError, match="no Google Cloud credentials|pip install"):
    workdir_lib.load_config("gs://genai-jax-no-such-bucket/runs/x")  # the eval/sample commands


def test_credentials_found_let_the_check_pass(no_credentials, monkeypatch, tmp_path):
  if storage.importlib.util.find_spec("gcsfs") is None:
    pytest.skip("gcsfs is not installed (pip install 'genai_jax[gcs]')")
  key = tmp_path / "key.json"
  monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key))
  with pytest.raises(UserError, match=f"GOOGLE_APPLICATION_CREDENTIALS={key} is not a file"):
    storage.check_reachable("gs://b/x")
  key.write_text("{}")
  storage._check_gcs.cache_clear()
  storage.check_reachable("gs://b/x")  # the key is used by gcsfs at the first read or write
  monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS")
  (tmp_path / "product_name").write_text("Google Compute Engine\n")  # a TPU VM: metadata server
  storage._check_gcs.cache_clear()
  storage.check_reachable("gs://b/x")


@pytest.mark.slow
def test_the_training_command_with_a_gs_workdir_and_no_credentials(tmp_path):
  if storage._on_google_cloud():
    pytest.skip("this machine is a Google Cloud VM: its metadata server provides credentials")
  env = {k: v for k, v in os.environ.items()
         if k not in ("GOOGLE_APPLICATION_CREDENTIALS", "GCE_METADATA_HOST", "GCE_METADATA_IP")}
  env.update(JAX_PLATFORMS="cpu", CLOUDSDK_CONFIG=str(tmp_path / "gcloud"))
  before = set(os.listdir(REPO))
  t = time.perf_counter()
  r = subprocess.run([sys.executable, "-m", "experiments.dcgan_celeba",
                      "--workdir=gs://genai-jax-no-such-bucket/run"], cwd=REPO, env=env,
                     capture_output=True, text=True, timeout=120)
  elapsed = time.perf_counter() - t
  assert r.returncode == 1, r.stderr[-2000:]
  lines = r.stderr.strip().splitlines()  # (TensorFlow's start-up log lines while it is imported)
  assert lines[-1].startswith("error: gs://genai-jax-no-such-bucket:"), r.stderr[-2000:]
  assert "gcloud auth application-default login" in lines[-1] or "pip install" in lines[-1]
  assert sum(line.startswith("error:") for line in lines) == 1, r.stderr[-2000:]
  assert "Traceback" not in r.stderr, r.stderr[-2000:]
  assert set(os.listdir(REPO)) == before  # no local 'gs:' directory, nothing else
  assert elapsed < 60, elapsed  # Python and JAX start-up; no network retries


def test_append_to_an_object_rewrites_it_whole(tmp_path, monkeypatch):
  path = str(tmp_path / "sub" / "metrics.jsonl")
  f = storage.AppendFile(path)
  f.write(b"1\n")
  f.close()
  monkeypatch.setattr(storage, "is_remote", lambda p: True)  # the bucket code path, on a local file
  f = storage.AppendFile(path)
  f.write(b"2\n")
  assert open(path, "rb").read() == b"1\n"  # an object changes only when flushed
  f.flush()
  assert open(path, "rb").read() == b"1\n2\n"
  f.write(b"3\n")
  f.close()
  assert open(path, "rb").read() == b"1\n2\n3\n"


def test_local_files_and_directories(tmp_path):
  root = str(tmp_path)
  storage.write_bytes(b"x", os.path.join(root, "a", "b", "c.bin"))
  storage.write_text_atomic("{}\n", os.path.join(root, "config.json"))
  assert storage.listdir(root) == ["a", "config.json"] and storage.isdir(os.path.join(root, "a"))
  assert storage.read_text(os.path.join(root, "config.json")) == "{}\n"
  assert [(os.path.relpath(d, root), files) for d, _, files in storage.walk(root)
          if files] == [(".", ["config.json"]), ("a/b", ["c.bin"])]
  storage.copy(os.path.join(root, "a", "b", "c.bin"), os.path.join(root, "c.bin"))
  storage.rmtree(os.path.join(root, "a"))
  assert storage.listdir(root) == ["c.bin", "config.json"]
