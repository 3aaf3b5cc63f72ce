"""py-naming: the namespace convention, as a Python policy (an example of a second language).

Checks every step:
- the namespace is `<customer>-<projectnum>-<env>`: 2-10 lowercase letters, 4 digits, and an
  environment from the `environments` setting (default dev, qa, test, staging, prod);
- the context's customer, project and environment agree with it;
- `target-db.id` and `new-pointer`, when present, are `<namespace>-<YYYYMMDD-HHMMSS>` (or the
  hyphenless `<namespace>-<YYYYMMDDHHMMSS>`).

Settings: {"environments": ["dev", "qa", "test", "staging", "prod"]}. Malformed settings deny.
The bundled Rust `naming` policy is the complete version of this rule.
"""

import json
import re

import wit_world
from wit_world.imports.types import (
    Context,
    Decision,
    Descriptor,
    Step,
    Verdict_Allow,
    Verdict_Deny,
)

SCHEMA = json.dumps({
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "py-naming settings",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "environments": {
            "description": "The environments a namespace may end in.",
            "type": "array",
            "items": {"type": "string", "minLength": 1},
            "default": ["dev", "qa", "test", "staging", "prod"],
        }
    },
})

DEFAULT_ENVIRONMENTS = ["dev", "qa", "test", "staging", "prod"]
TIMESTAMP = re.compile(r"^\d{8}-?\d{6}$")


def settings_of(ctx: Context):
    """The environments setting, or a deny reason naming the bad setting."""
    try:
        settings = json.loads(ctx.settings or "{}")
    except ValueError as err:
        return None, f"invalid settings: not valid JSON: {err}"
    if not isinstance(settings, dict):
        return None, "invalid settings: not a JSON object"
    unknown = sorted(set(settings) - {"environments"})
    if unknown:
        return None, f"invalid settings: unknown field `{unknown[0]}`, expected `environments`"
    environments = settings.get("environments", DEFAULT_ENVIRONMENTS)
    if not isinstance(environments, list) or not all(isinstance(e, str) for e in environments):
        return None, "invalid setting `environments`: expected a list of strings"
    return environments, None


def check(ctx: Context, environments) -> list:
    reasons = []
    pattern = re.compile(
        r"^([a-z]{2,10})-(\d{4})-(" + "|".join(re.escape(e) for e in environments) + r")$"
    )
    match = pattern.match(ctx.namespace)
    if match is None:
        reasons.append(
            f"namespace {ctx.namespace!r} does not follow <customer>-<projectnum>-<env> "
            f"with env one of {', '.join(environments)}"
        )
    else:
        for field, want in zip(("customer", "project", "environment"), match.groups()):
            given = getattr(ctx, field)
            if given != want:
                reasons.append(
                    f"context {field} {given!r} disagrees with namespace {ctx.namespace!r} "
                    f"(its {field} is {want!r})"
                )
    names = []
    if ctx.target_db is not None:
        names.append(("target database", ctx.target_db.id))
    if ctx.new_pointer is not None:
        names.append(("new pointer", ctx.new_pointer))
    for what, name in names:
        prefix = ctx.namespace + "-"
        if not (name.startswith(prefix) and TIMESTAMP.match(name[len(prefix):])):
            reasons.append(f"{what} {name!r} is not named {ctx.namespace}-<YYYYMMDD-HHMMSS>")
    return reasons


class WitWorld(wit_world.WitWorld):
    def describe(self) -> Descriptor:
        return Descriptor(
            name="py-naming",
            version="0.1.0",
            steps=[
                Step.SNAPSHOT,
                Step.CREATE_DATABASE,
                Step.SWAP_POINTER,
                Step.DEPLOY_SERVICE,
                Step.CLEANUP,
            ],
            settings_schema=SCHEMA,
        )

    def evaluate(self, context: Context) -> Decision:
        environments, error = settings_of(context)
        reasons = [error] if error else check(context, environments)
        verdict = Verdict_Deny(reasons) if reasons else Verdict_Allow()
        return Decision(verdict=verdict, warnings=[])
