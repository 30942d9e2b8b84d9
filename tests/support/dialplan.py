"""The shipped dialplan read and walked as Asterisk would for the few applications it uses.

Enough of extensions.conf to follow `[ccshortlink-hotline]` call by call: contexts, `exten =>`
and `same => n(label)` priorities, ${VAR} and ${FUNC(...)} substitution (CALLERID, URIENCODE,
IF, CURL, CURLOPT with httpheader), $["a" = "b"] expressions, and Set, GotoIf, Goto, Dial,
Queue, Hangup.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import aiohttp

SHIPPED = Path(__file__).resolve().parents[2] / "etc" / "asterisk" / "extensions-ccshortlink.conf"


@dataclass(frozen=True)
class Step:
    priority: int
    label: str
    app: str
    args: str


def read_contexts(text: str) -> dict[str, dict[str, list[Step]]]:
    """{context: {exten: [steps in priority order]}}; fails on a line Asterisk would refuse."""
    contexts: dict[str, dict[str, list[Step]]] = {}
    context = exten = ""
    for number, raw in enumerate(text.splitlines(), 1):
        line = _strip_comment(raw).strip()
        if not line:
            continue
        if header := re.fullmatch(r"\[([\w-]+)\]", line):
            context = header.group(1)
            contexts[context] = {}
            continue
        found = re.fullmatch(r"(exten|same)\s*=>\s*(.+)", line)
        assert found and context, f"line {number}: not a dialplan line: {raw!r}"
        if found.group(1) == "exten":
            exten, priority, rest = found.group(2).split(",", 2)
            assert priority == "1", f"line {number}: an extension starts at priority 1"
            steps = contexts[context].setdefault(exten, [])
        else:
            priority, rest = found.group(2).split(",", 1)
            assert exten and re.fullmatch(r"n(\([\w-]+\))?", priority), f"line {number}"
            steps = contexts[context][exten]
        label = priority[2:-1] if priority.startswith("n(") else ""
        app = re.fullmatch(r"(\w+)\((.*)\)", rest.strip())
        assert app, f"line {number}: not Application(args): {rest!r}"
        steps.append(Step(len(steps) + 1, label, app.group(1), app.group(2)))
    return contexts


def _strip_comment(line: str) -> str:
    return re.sub(r"(?<!\\);.*", "", line)


def _closing(text: str, start: int, opening: str, closing: str) -> int:
    """The index of the bracket closing the one at `start`."""
    depth = 0
    for index in range(start, len(text)):
        if text[index] == opening:
            depth += 1
        elif text[index] == closing:
            depth -= 1
            if depth == 0:
                return index
    raise AssertionError(f"unbalanced {opening}{closing} in {text!r}")


def calls_in(text: str, function: str) -> list[str]:
    """The argument of every ${FUNCTION(...)} in `text`, as written (unsubstituted)."""
    found = []
    for match in re.finditer(re.escape("${" + function + "("), text):
        start = match.end() - 1
        found.append(text[start + 1:_closing(text, start, "(", ")")])
    return found


# func_curl: the URL and the headers CURLOPT(httpheader) added; the body whatever the status.
Curl = Callable[[str, dict[str, str]], Awaitable[str]]


def curl_to(port: int) -> Curl:
    """CURL() asking a daemon on `port` instead of the snippet's 127.0.0.1:8080 (the one
    edit its comments ask for): the body as it comes."""
    async def curl(url: str, headers: dict[str, str]) -> str:
        async with aiohttp.ClientSession() as http, http.get(
                url.replace("127.0.0.1:8080", f"127.0.0.1:{port}"), headers=headers) as answer:
            return await answer.text()

    return curl


@dataclass
class Call:
    """One caller walking the dialplan; `dial_status` is what the rung agent does."""

    variables: dict[str, str]
    curl: Curl
    dial_status: str = "ANSWER"
    curl_options: dict[str, str] = field(default_factory=dict)
    curl_headers: dict[str, str] = field(default_factory=dict)  # each httpheader adds one
    did: list[str] = field(default_factory=list)  # "Dial(PJSIP/1001,20)", "Queue(support)"

    async def substitute(self, text: str) -> str:
        out, index = [], 0
        while index < len(text):
            if text.startswith("${", index):
                end = _closing(text, index + 1, "{", "}")
                out.append(await self._value(await self.substitute(text[index + 2:end])))
                index = end + 1
            elif text.startswith("$[", index):
                end = _closing(text, index + 1, "[", "]")
                out.append(_expression(await self.substitute(text[index + 2:end])))
                index = end + 1
            else:
                out.append(text[index])
                index += 1
        return "".join(out)

    async def _value(self, name: str) -> str:
        function = re.fullmatch(r"(\w+)\((.*)\)", name, re.DOTALL)
        if function is None or function.group(1) == "CALLERID":
            return self.variables.get(name, "")
        func, argument = function.groups()
        if func == "URIENCODE":
            return quote(argument, safe="")
        if func == "IF":
            condition, _, choices = argument.partition("?")
            yes, _, no = choices.partition(":")
            return yes if condition.strip() not in ("", "0") else no
        if func == "CURL":
            return await self.curl(argument, dict(self.curl_headers))
        raise AssertionError(f"the walker does not know ${{{name}}}")

    async def run(self, contexts: dict[str, dict[str, list[Step]]], context: str,
                  exten: str = "s") -> None:
        """Follow the dialplan from context,exten,1 until Hangup, Queue or the end."""
        steps, index = contexts[context][exten], 0
        for _ in range(100):
            if index >= len(steps):
                return
            step = steps[index]
            args = await self.substitute(step.args)
            index += 1
            if step.app == "NoOp":
                continue
            if step.app == "Set":
                name, _, value = args.partition("=")
                if name == "CURLOPT(httpheader)":
                    header, _, header_value = value.partition(":")
                    self.curl_headers[header.strip()] = header_value.strip()
                elif option := re.fullmatch(r"CURLOPT\((\w+)\)", name):
                    self.curl_options[option.group(1)] = value
                else:
                    self.variables[name] = value
            elif step.app in ("GotoIf", "Goto"):
                target = args
                if step.app == "GotoIf":
                    condition, _, choices = args.partition("?")
                    yes, _, no = choices.partition(":")
                    target = yes if condition.strip() not in ("", "0") else no
                if not target:
                    continue
                parts = target.split(",")
                if len(parts) == 3:
                    self.did.append(f"Goto({target})")
                    if parts[0] not in contexts:
                        return  # somewhere else in the PBX's dialplan
                    steps, index = contexts[parts[0]][parts[1]], int(parts[2]) - 1
                else:
                    index = next(s.priority for s in steps if s.label == target) - 1
            elif step.app == "Dial":
                self.did.append(f"Dial({args})")
                self.variables["DIALSTATUS"] = self.dial_status
            elif step.app in ("Queue", "Hangup"):
                self.did.append(f"{step.app}({args})")
                return
            else:
                raise AssertionError(f"the walker does not know {step.app}()")
        raise AssertionError("the dialplan loops")


def _expression(text: str) -> str:
    compared = re.fullmatch(r'\s*"(.*)"\s*(!=|=)\s*"(.*)"\s*', text)
    assert compared, f"the walker reads only $[\"a\" = \"b\"], not $[{text}]"
    left, operator, right = compared.groups()
    return "1" if (left == right) == (operator == "=") else "0"
