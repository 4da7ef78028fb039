"""The documentation: README.md is the front door (at most 10 KB, with the two set-up commands),
and every relative link and image path in README.md and docs/ resolves."""

import pathlib
import re
import tempfile

import chex
from absl.testing import absltest

from ib_jax import results
from tests import testing

_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
_PAGES = [testing.REPO / "README.md", *sorted((testing.REPO / "docs").rglob("*.md"))]


class DocsTest(chex.TestCase):
    def test_readme_is_short_and_shows_the_two_commands(self):
        readme = (testing.REPO / "README.md").read_text()
        self.assertLessEqual(len(readme.encode()), 10 * 1024)
        ci = (testing.REPO / ".ci" / "run").read_text()
        test_command = re.search(r"test_command='([^']+)'", ci).group(1)
        self.assertIn(test_command, readme)
        self.assertIn("pip install -q -r requirements.txt && .venv/bin/python -m experiments.tishby", readme)

    def test_torch_is_only_in_the_download_extra(self):
        """requirements.txt (the main experiment's install) pulls no torch: only the download does."""
        names = lambda path: {  # noqa: E731
            re.split(r"[=<> \[]", line)[0].lower()
            for line in (testing.REPO / path).read_text().splitlines()
            if line.strip() and not line.startswith(("#", "-r"))
        }
        self.assertFalse({"torch", "torchvision"} & (names("requirements.txt") | names("requirements-dev.txt")))
        self.assertEqual(names("requirements-download.txt"), {"torch", "torchvision"})
        pyproject = (testing.REPO / "pyproject.toml").read_text()
        self.assertIn('download = ["torch==2.13.0", "torchvision==0.28.0"]', pyproject)

    def test_every_relative_link_and_image_resolves(self):
        checked = 0
        for page in _PAGES:
            for target in _LINK.findall(page.read_text()):
                if re.match(r"[a-z]+:", target) or target.startswith("#"):
                    continue  # a web address or an anchor on the same page
                path = (page.parent / target.split("#")[0]).resolve()
                with self.subTest(page=page.name, target=target):
                    self.assertTrue(path.exists(), f"{page.relative_to(testing.REPO)} links to missing {target}")
                checked += 1
        self.assertGreater(checked, 20)

    def test_every_docs_page_is_linked_from_the_readme(self):
        readme = (testing.REPO / "README.md").read_text()
        for page in _PAGES[1:]:
            self.assertIn(f"(docs/{page.relative_to(testing.REPO / 'docs')})", readme, page.name)


class SnippetsTest(chex.TestCase):
    """Every Python block in README.md and docs/ is a whole program that runs as written (each
    in an empty folder, MNIST read from the offline copy through $IB_JAX_DATA, a run the pandas
    example reads put in place first), without a warning."""

    def test_every_python_block_runs(self):
        snippets = []
        for page in _PAGES:
            for i, code in enumerate(re.findall(r"```python\n(.*?)```", page.read_text(), re.S)):
                folder = pathlib.Path(tempfile.mkdtemp())
                (folder / "snippet.py").write_text(code)
                if "runs/tishby" in code:  # the tidy-table example reads a finished run
                    results.save_results(folder / "runs" / "tishby", testing.synthetic_results())
                snippets.append((f"{page.relative_to(testing.REPO)} #{i + 1}", folder))
        self.assertGreaterEqual(len(snippets), 6)
        cases = [{"path": str(folder / "snippet.py"), "cwd": str(folder)} for _, folder in snippets]
        done = testing.run_forked("experiments.tishby", cases, env={"IB_JAX_DATA": str(testing.DATA_DIR)})
        for (name, _), proc in zip(snippets, done):
            with self.subTest(name):
                self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
                self.assertNotRegex(proc.stderr, r"Warning|Traceback", proc.stderr[-3000:])


if __name__ == "__main__":
    absltest.main()
