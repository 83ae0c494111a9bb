"""A small Dockerfile reader for the deployment tests: stages, instructions, ENV, exec forms,
and the ``.dockerignore`` rules as Docker applies them.

It covers the syntax the project's Dockerfile uses (line continuations, comments, ``KEY=value``
ENV pairs with ``$VAR`` / ``${VAR}`` expansion, JSON exec forms), not the whole language.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

__all__ = ["Instruction", "Stage", "ignored", "parse", "read_dockerignore"]


@dataclass(frozen=True)
class Instruction:
    """One instruction: upper-case keyword, the raw argument text, its first line number."""

    keyword: str
    args: str
    line: int

    def exec_form(self) -> list[str]:
        """The JSON array of an exec-form CMD/ENTRYPOINT/HEALTHCHECK CMD; ValueError otherwise."""
        text = self.args
        if self.keyword == "HEALTHCHECK":
            text = re.sub(r"^(--\S+\s+)*CMD\s+", "", text)
        value = json.loads(text)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"line {self.line}: {self.keyword} is not in exec form")
        return value

    def flags(self) -> dict[str, str]:
        """``--name=value`` flags at the start of the arguments (COPY --from, --chown...)."""
        return dict(re.findall(r"--([a-z-]+)=(\S+)", self.args.split(" /", 1)[0]))

    def operands(self) -> list[str]:
        """The arguments after the leading ``--flags`` (shell-split)."""
        return [word for word in shlex.split(self.args) if not word.startswith("--")]


@dataclass
class Stage:
    """One build stage: its base image (global ARG defaults expanded; ``declared`` is the
    FROM text as written), name, and instructions in order."""

    base: str
    name: str | None
    line: int
    instructions: list[Instruction] = field(default_factory=list)
    declared: str = ""

    def all(self, keyword: str) -> list[Instruction]:
        """Every instruction with that keyword, in order."""
        return [i for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> Instruction | None:
        """The effective (last) instruction with that keyword, or None."""
        found = self.all(keyword)
        return found[-1] if found else None

    def env(self, inherited: Mapping[str, str]) -> dict[str, str]:
        """The environment after this stage's ENV instructions, starting from ``inherited``
        (``$VAR`` and ``${VAR}`` expand against what is set so far)."""
        env = dict(inherited)
        for instruction in self.all("ENV"):
            for key, value in _env_pairs(instruction.args):
                env[key] = _expand(value, env)
        return env

    def workdir(self) -> str:
        """The final WORKDIR (absolute paths only, as the project writes them)."""
        last = self.last("WORKDIR")
        return last.args if last else "/"


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    buffer: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not buffer and (not stripped or stripped.startswith("#")):
            continue
        if buffer and stripped.startswith("#"):
            continue  # comment lines inside a continuation are dropped, as Docker does
        if not buffer:
            start = number
        if stripped.endswith("\\"):
            buffer.append(stripped[:-1].strip())
            continue
        buffer.append(stripped)
        yield start, " ".join(part for part in buffer if part)
        buffer = []
    if buffer:
        yield start, " ".join(buffer)


def parse(path: Path) -> list[Stage]:
    """The stages of the Dockerfile at ``path``; a FROM's ``$ARG`` takes the default of the
    global ARG (one declared before the first FROM)."""
    stages: list[Stage] = []
    global_args: dict[str, str] = {}
    for line, text in _logical_lines(path.read_text()):
        keyword, _, args = text.partition(" ")
        keyword = keyword.upper()
        args = args.strip()
        if keyword == "FROM":
            words = args.split()
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            base = _expand(words[0], global_args)
            stages.append(Stage(base=base, name=name, line=line, declared=words[0]))
        elif keyword == "ARG" and not stages:
            key, _, default = args.partition("=")
            global_args[key] = default
        elif not stages:
            raise ValueError(f"line {line}: {keyword} before FROM")
        else:
            stages[-1].instructions.append(Instruction(keyword, args, line))
    return stages


def _env_pairs(args: str) -> Iterable[tuple[str, str]]:
    words = shlex.split(args, posix=True)
    if words and "=" not in words[0]:  # legacy form: ENV KEY value with spaces
        return [(words[0], " ".join(words[1:]))]
    return [tuple(word.split("=", 1)) for word in words]  # type: ignore[misc]


def _expand(value: str, env: Mapping[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: env.get(m.group(1) or m.group(2), ""), value)


# -- .dockerignore ------------------------------------------------------------------------------


def read_dockerignore(path: Path) -> list[tuple[bool, re.Pattern[str]]]:
    """The rules of a ``.dockerignore`` as (exclude?, compiled pattern), in file order."""
    rules: list[tuple[bool, re.Pattern[str]]] = []
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exclude = not line.startswith("!")
        pattern = str(PurePosixPath(line.lstrip("!").strip().lstrip("/")))
        rules.append((exclude, re.compile(_glob_to_regex(pattern))))
    return rules


def _glob_to_regex(pattern: str) -> str:
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return "^" + "".join(out) + "$"


def ignored(relative: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Whether Docker leaves ``relative`` (a path in the build context) out of the context.

    As in Docker: the last rule that matches the path or one of its parent directories wins.
    """
    parts = PurePosixPath(relative).parts
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    result = False
    for exclude, regex in rules:
        if any(regex.match(candidate) for candidate in candidates):
            result = exclude
    return result
