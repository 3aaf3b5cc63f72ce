#!/usr/bin/env python3
"""Offline checks of the SAM template (infra/template.yaml) that cfn-lint does not make.

  * No IAM statement allows the action `*` or `service:*` (or any wildcard action), and none uses
    NotAction or NotResource.
  * Every Allow statement with `Resource: "*"` has a `# resource-star: <why>` comment on the
    comment line(s) just above it.
  * Every IAM action the template uses is listed in infra/known_actions.txt, and every action
    listed there is a real one: an operation in botocore's service model of its service, or one of
    the few permission-only actions named in PERMISSION_ONLY below; and, where cfn-lint ships
    IAM's own list of actions (Policies.json), in that list too.
  * Every `${...}` placeholder in every statemachines/*.asl.json is provided by the
    DefinitionSubstitutions of the state machine that deploys it, each substitution names a
    function of the template (by `!GetAtt <Function>.Arn`, and the function whose binary the
    placeholder's name says: `CreateDbFunctionArn` is the `create-db` binary) or, for
    `<Name>StateMachineArn`, the machine of the template that deploys `<name>.asl.json` (by
    `!Ref`), and none is unused.
  * Every DefinitionUri and CodeUri that is a local path exists (a cargo-lambda CodeUri with a
    Cargo.toml).
  * Every function builds a binary of functions/src/bin/ (Metadata BuildProperties Binary), every
    binary there has exactly one function, and every function has the runtime, architecture,
    handler, tracing and environment Switchyard's functions need.
  * Every function and state machine has its own role (`Role: !GetAtt <Role>.Arn` of an
    AWS::IAM::Role in the template) that nothing else uses, trusting only its own service; so has
    every schedule (Target.RoleArn, scheduler.amazonaws.com), pipeline (codepipeline.amazonaws.com)
    and EventBridge rule target with a role (events.amazonaws.com). A role is created under the
    same Condition as the resource that uses it.
  * Every EventBridge Scheduler schedule starts a state machine of the template, with an Input
    that is a JSON object; one that starts the deploy machine gives the request fields of
    DeployState (crates/core/src/state.rs): `namespace`, and exactly one of `source_namespace`,
    `snapshot_id` and `promote_from` (with `promoted_execution`), and optionally `image`, and
    nothing else.

  * Every statement that lets a function create, change or delete an RDS instance or snapshot is
    scoped by what Switchyard owns: a `switchyard:namespace` tag (aws:ResourceTag, or
    aws:RequestTag for what is created) matched against `!Ref NamespacePatterns`, so one stack
    serves every customer the patterns name and nothing else. `evaluate` answers whether a role
    allows one request (action, resource ARN, tags) for given parameter values; the tests ask it
    of a template serving two customers.

Run with the project's venv, which has cfn-lint (its template decoder is used here) and botocore
(which moto brings): `.venv/bin/python -B infra/check.py [template]`. Exits 1 listing every problem.

`infra/check.py --iam-only TEMPLATE` checks another template (infra/examples/pipeline.yaml) for the
IAM rules alone: no wildcard actions, every `Resource: "*"` explained, every action a real one
(known_actions.txt is the SAM template's list and is not consulted), one role per user.
"""

from __future__ import annotations

import difflib
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

INFRA = Path(__file__).resolve().parent
ROOT = INFRA.parent
TEMPLATE = INFRA / "template.yaml"
KNOWN_ACTIONS = INFRA / "known_actions.txt"
DISPATCH = ROOT / "crates" / "core" / "src" / "dispatch.rs"
FUNCTIONS_MANIFEST = ROOT / "functions" / "Cargo.toml"
# The one bootstrap every function runs; SWITCHYARD_STEP names the step it serves.
BOOTSTRAP = "switchyard-lambda"
STEP_VAR = "SWITCHYARD_STEP"
STATE_MACHINES = ROOT / "statemachines"

# IAM service prefix -> botocore service model name.
SERVICE_MODELS = {
    "codepipeline": "codepipeline",
    "ecs": "ecs",
    "events": "events",
    "iam": "iam",
    "kms": "kms",
    "lambda": "lambda",
    "logs": "logs",
    "rds": "rds",
    "s3": "s3",
    "secretsmanager": "secretsmanager",
    "sns": "sns",
    "ssm": "ssm",
    "states": "stepfunctions",
    "sts": "sts",
    "xray": "xray",
}

# IAM actions that are not the name of an API operation of their service. For these services IAM
# action names equal operation names, except:
PERMISSION_ONLY = {
    # Passing a role to a service (here: the task and execution roles of a task definition ECS
    # registers) is authorized as iam:PassRole; IAM has no PassRole operation.
    "iam:PassRole",
    # Lambda's Invoke operation is authorized as lambda:InvokeFunction.
    "lambda:InvokeFunction",
    # Vended-log delivery (Step Functions logging to CloudWatch Logs) is authorized by these
    # permission-only actions, which CloudWatch Logs documents under "Enabling logging from AWS
    # services"; they are not operations of the logs API (its CreateDelivery & co. are another
    # feature).
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    # Reading a given version of an object (GetObject with versionId) is authorized as
    # s3:GetObjectVersion; CodePipeline's S3 source reads the version that triggered it.
    "s3:GetObjectVersion",
}

FUNCTION_TYPES = {"AWS::Serverless::Function", "AWS::Lambda::Function"}
STATE_MACHINE_TYPES = {"AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine"}
SCHEDULE_TYPE = "AWS::Scheduler::Schedule"
TRUSTED_SERVICE = {
    "AWS::Serverless::Function": "lambda.amazonaws.com",
    "AWS::Lambda::Function": "lambda.amazonaws.com",
    "AWS::Serverless::StateMachine": "states.amazonaws.com",
    "AWS::StepFunctions::StateMachine": "states.amazonaws.com",
    SCHEDULE_TYPE: "scheduler.amazonaws.com",
    "AWS::CodePipeline::Pipeline": "codepipeline.amazonaws.com",
    "AWS::Events::Rule": "events.amazonaws.com",
}
# The deploy machine's file, and the request fields of its input (DeployState in
# crates/core/src/state.rs; the rest of DeployState is filled in by the machine's own steps).
DEPLOY_MACHINE_FILE = "deploy.asl.json"
DEPLOY_REQUEST_FIELDS = {
    "namespace",
    "source_namespace",
    "snapshot_id",
    "promote_from",
    "promoted_execution",
    "image",
}
# The orphan sweep's file, and the fields of its input (OrphanSweep in
# crates/core/src/steps/orphans.rs), each with the JSON type it takes.
SWEEP_MACHINE_FILE = "sweep-orphans.asl.json"
SWEEP_REQUEST_FIELDS = {"apply": bool, "min_age_hours": int, "snapshot_retention_days": int}
# The refresh machine's file; its input is {"pairs": "TARGET<SOURCE,..."}.
REFRESH_MACHINE_FILE = "refresh.asl.json"
NAMESPACE_RE = r"[a-z][a-z0-9]{1,11}-[0-9]{4}-[a-z][a-z0-9]{1,9}"
REFRESH_PAIR = re.compile(rf"{NAMESPACE_RE}<{NAMESPACE_RE}")
# What every Switchyard function needs (after SAM Globals are applied).
FUNCTION_SHAPE = {
    "Runtime": "provided.al2023",
    "Architectures": ["arm64"],
    "Handler": "bootstrap",
}
PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")
RESOURCE_STAR_COMMENT = re.compile(r"^\s*#\s*resource-star:\s*\S")


@dataclass
class Statement:
    resource_id: str
    path: str
    node: Any

    @property
    def line(self) -> int | None:
        """1-based line of the statement in the template, when the decoder kept it."""
        mark = getattr(self.node, "start_mark", None)
        if mark is None or (mark.line == 0 and mark.column == 0):
            return None
        return mark.line + 1

    def where(self) -> str:
        line = self.line
        at = f"line {line}: " if line else ""
        return f"{at}{self.resource_id} {self.path}"


class TemplateError(Exception):
    pass


# ------------------------------------------------------------------------------------------------
# Loading
# ------------------------------------------------------------------------------------------------


def load_template(text: str) -> dict:
    """Decodes a template with cfn-lint's decoder, which keeps each node's line."""
    try:
        from cfnlint.decode import decode_str
    except ImportError as err:  # pragma: no cover - environment problem
        raise TemplateError(
            "cannot import cfn-lint's decoder (cfnlint.decode): install cfn-lint into the venv "
            f"({err})"
        ) from err
    template, matches = decode_str(text)
    if matches or not isinstance(template, dict):
        problems = "; ".join(str(m) for m in matches) or "not a mapping"
        raise TemplateError(f"template does not parse: {problems}")
    return template


def load_operations(prefixes: set[str]) -> dict[str, set[str]]:
    """The API operation names of each service, from botocore's service-2.json models."""
    try:
        from botocore.loaders import Loader
    except ImportError as err:
        raise TemplateError(
            "cannot import botocore, whose service models the action names are checked against: "
            "install boto3 (or moto, which tests/run installs) into the venv"
        ) from err
    loader = Loader()
    operations: dict[str, set[str]] = {}
    for prefix in sorted(prefixes):
        model = SERVICE_MODELS.get(prefix)
        if model is None:
            continue
        operations[prefix] = set(loader.load_service_model(model, "service-2")["operations"])
    return operations


def load_iam_actions() -> dict[str, set[str]] | None:
    """IAM's own action names (lower-cased) per service, from the Service Authorization Reference
    data cfn-lint ships; None when this cfn-lint keeps it elsewhere. A second opinion, and the only
    one on the permission-only actions."""
    try:
        import cfnlint
    except ImportError:
        return None
    path = Path(cfnlint.__file__).parent / "data" / "AdditionalSpecs" / "Policies.json"
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    return {
        prefix: {name.lower() for name in (service.get("Actions") or {})}
        for prefix, service in data.items()
        if isinstance(service, dict)
    }


def parse_known_actions(text: str) -> list[tuple[int, str]]:
    """(line, action) for each non-empty, non-comment line."""
    entries = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if line:
            entries.append((number, line))
    return entries


# ------------------------------------------------------------------------------------------------
# Template helpers
# ------------------------------------------------------------------------------------------------


def resources(template: dict) -> dict:
    found = template.get("Resources") or {}
    return found if isinstance(found, dict) else {}


def as_list(value: Any) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def iter_statements(template: dict) -> Iterator[Statement]:
    """Every IAM policy statement in any resource's properties (roles, policies, SAM Policies)."""

    def walk(value: Any, resource_id: str, path: str) -> Iterator[Statement]:
        if isinstance(value, dict):
            for key, child in value.items():
                if key == "Statement":
                    for index, statement in enumerate(as_list(child)):
                        if isinstance(statement, dict):
                            yield Statement(resource_id, f"{path}.Statement[{index}]", statement)
                else:
                    yield from walk(child, resource_id, f"{path}.{key}")
        elif isinstance(value, list):
            for index, child in enumerate(value):
                yield from walk(child, resource_id, f"{path}[{index}]")

    for resource_id, resource in resources(template).items():
        if isinstance(resource, dict):
            yield from walk(resource.get("Properties") or {}, resource_id, "Properties")


def actions_of(statement: Statement) -> list[str]:
    return [a for a in as_list(statement.node.get("Action")) if isinstance(a, str)]


def is_allow(statement: Statement) -> bool:
    return statement.node.get("Effect") == "Allow"


def getatt_target(value: Any, attribute: str = "Arn") -> str | None:
    """The logical id X of `!GetAtt X.<attribute>` (either form), else None."""
    if isinstance(value, dict) and list(value) == ["Fn::GetAtt"]:
        target = value["Fn::GetAtt"]
        if isinstance(target, str):
            target = target.split(".", 1)
        if isinstance(target, list) and len(target) == 2 and target[1] == attribute:
            return str(target[0])
    return None


def effective_properties(template: dict, resource: dict) -> dict:
    """A SAM function's or state machine's properties with the template's Globals under them
    (environment variables merged, the function's winning, as SAM merges maps)."""
    kind = {"AWS::Serverless::Function": "Function", "AWS::Serverless::StateMachine": "StateMachine"}
    globals_ = (template.get("Globals") or {}).get(kind.get(resource.get("Type"), "")) or {}
    merged = dict(globals_)
    own = resource.get("Properties") or {}
    merged.update(own)
    variables = dict(((globals_.get("Environment") or {}).get("Variables")) or {})
    variables.update(((own.get("Environment") or {}).get("Variables")) or {})
    if variables:
        merged["Environment"] = {"Variables": variables}
    return merged


def step_names(dispatch: Path = DISPATCH) -> set[str]:
    """The steps' function names, as `Step::function_name` spells them."""
    return set(re.findall(r'Step::\w+ => "([a-z-]+)"', dispatch.read_text()))


def step_of(template: dict, function: dict) -> Any:
    """The step a function serves: its SWITCHYARD_STEP."""
    variables = (effective_properties(template, function).get("Environment") or {}).get("Variables")
    return (variables or {}).get(STEP_VAR)


def binary_to_placeholder(binary: str) -> str:
    """`create-db` -> `CreateDbFunctionArn`, as Step::arn_placeholder does."""
    return "".join(part[:1].upper() + part[1:] for part in binary.split("-")) + "FunctionArn"


# ------------------------------------------------------------------------------------------------
# Checks. Each returns a list of problems (empty when all is well).
# ------------------------------------------------------------------------------------------------


def check_wildcard_actions(template: dict) -> list[str]:
    problems = []
    for statement in iter_statements(template):
        for key in ("NotAction", "NotResource"):
            if key in statement.node:
                problems.append(
                    f"{statement.where()}: uses {key}, which allows everything not listed: "
                    "list what is allowed instead"
                )
        if not is_allow(statement):
            continue
        for action in actions_of(statement):
            if action == "*" or re.fullmatch(r"[A-Za-z0-9-]+:\*", action):
                problems.append(
                    f"{statement.where()}: allows the action {action!r}: name each action the "
                    "code calls instead"
                )
            elif "*" in action or "?" in action:
                problems.append(
                    f"{statement.where()}: allows the wildcard action {action!r}: name each action"
                )
    return problems


def check_resource_star(template: dict, text: str) -> list[str]:
    lines = text.splitlines()
    problems = []
    for statement in iter_statements(template):
        if not is_allow(statement) or "*" not in as_list(statement.node.get("Resource")):
            continue
        line = statement.line
        if line is None:
            problems.append(
                f"{statement.where()}: Resource \"*\" where its line is unknown, so no "
                "'# resource-star:' comment can be found for it"
            )
            continue
        explained = False
        index = line - 2  # the line just above the statement, 0-based
        while index >= 0 and lines[index].lstrip().startswith("#"):
            if RESOURCE_STAR_COMMENT.match(lines[index]):
                explained = True
                break
            index -= 1
        if not explained:
            problems.append(
                f"{statement.where()}: Resource \"*\" for {', '.join(actions_of(statement))} "
                "without a '# resource-star: <why>' comment on the line(s) just above the "
                "statement: scope it, or say why the API cannot be scoped"
            )
    return problems


def template_actions(template: dict) -> dict[str, list[Statement]]:
    used: dict[str, list[Statement]] = {}
    for statement in iter_statements(template):
        for action in actions_of(statement):
            used.setdefault(action, []).append(statement)
    return used


def action_problems(
    action: str, operations: dict[str, set[str]], iam_actions: dict[str, set[str]]
) -> list[str]:
    """Why `action` is no real IAM action (empty when it is one)."""
    prefix, sep, name = action.partition(":")
    if not sep or not prefix or not name:
        return [f"{action!r} is not of the form service:Action"]
    problems = []
    if iam_actions and name.lower() not in iam_actions.get(prefix, set()):
        problems.append(f"{action!r} is not in IAM's list of {prefix} actions (cfn-lint's data)")
    if action in PERMISSION_ONLY:
        return problems
    if prefix not in SERVICE_MODELS:
        return problems + [
            f"no botocore model is mapped for the service prefix of {action!r}: add it to "
            "SERVICE_MODELS in check.py"
        ]
    names = operations.get(prefix, set())
    if name not in names:
        same_but_case = [op for op in names if op.lower() == name.lower()]
        close = same_but_case or difflib.get_close_matches(name, sorted(names), n=3)
        hint = f" (did you mean {', '.join(f'{prefix}:{c}' for c in close)}?)" if close else ""
        problems.append(
            f"{action!r} is no operation of {prefix} in botocore's service model, nor a known "
            f"permission-only action{hint}"
        )
    return problems


def check_known_actions(
    template: dict,
    known_text: str,
    operations: dict[str, set[str]] | None = None,
    iam_actions: dict[str, set[str]] | None = None,
) -> list[str]:
    """Template actions against known_actions.txt, and both against botocore's service models
    (and, where cfn-lint has it, IAM's own list of actions)."""
    problems = []
    entries = parse_known_actions(known_text)
    known = {action for _, action in entries}
    used = {a: s for a, s in template_actions(template).items() if "*" not in a and "?" not in a}
    prefixes = {action.split(":", 1)[0] for action in known | set(used) if ":" in action}
    if operations is None:
        operations = load_operations(prefixes)
    if iam_actions is None:
        iam_actions = load_iam_actions() or {}
    for action, statements in sorted(used.items()):
        if action in known:
            continue  # judged below, as listed
        why = "; ".join(action_problems(action, operations, iam_actions))
        problems.append(
            f"{statements[0].where()}: action {action!r} is not listed in {KNOWN_ACTIONS.name}"
            + (f"; {why}" if why else ": add it there")
        )
    seen: set[str] = set()
    for number, action in entries:
        where = f"{KNOWN_ACTIONS.name}:{number}"
        if action in seen:
            problems.append(f"{where}: {action!r} is listed twice")
        seen.add(action)
        if action not in used:
            problems.append(f"{where}: {action!r} is listed but the template does not use it")
        problems.extend(f"{where}: {why}" for why in action_problems(action, operations, iam_actions))
    return problems


def check_state_machines(
    template: dict, template_dir: Path, machine_files: list[Path] | None = None
) -> list[str]:
    """Placeholders against DefinitionSubstitutions; substitutions against functions."""
    problems = []
    all_resources = resources(template)
    deployed: set[Path] = set()
    for machine_id, machine in all_resources.items():
        if not isinstance(machine, dict) or machine.get("Type") != "AWS::Serverless::StateMachine":
            continue
        properties = effective_properties(template, machine)
        uri = properties.get("DefinitionUri")
        if not isinstance(uri, str):
            problems.append(
                f"{machine_id}: DefinitionUri is not a local file, so its placeholders cannot be "
                "checked"
            )
            continue
        path = (template_dir / uri).resolve()
        if not path.is_file():
            continue  # reported by check_paths
        deployed.add(path)
        placeholders = set(PLACEHOLDER.findall(path.read_text()))
        substitutions = properties.get("DefinitionSubstitutions") or {}
        for name in sorted(placeholders - set(substitutions)):
            problems.append(
                f"{machine_id}: {uri} uses ${{{name}}}, which DefinitionSubstitutions does not "
                "provide"
            )
        for name, value in substitutions.items():
            if name not in placeholders:
                problems.append(f"{machine_id}: substitution {name} is used nowhere in {uri}")
            if name.endswith("StateMachineArn"):
                # Another machine of the template, by `!Ref` (a nested execution's target):
                # `DeployStateMachineArn` is the machine deploying deploy.asl.json.
                target = value.get("Ref") if isinstance(value, dict) else None
                other = all_resources.get(target) if isinstance(target, str) else None
                if not isinstance(other, dict) or other.get("Type") != "AWS::Serverless::StateMachine":
                    problems.append(
                        f"{machine_id}: substitution {name} is not `!Ref <StateMachine>` of the template"
                    )
                    continue
                stem = name.removesuffix("StateMachineArn")
                other_uri = effective_properties(template, other).get("DefinitionUri")
                expected = re.sub(r"(?<!^)(?=[A-Z])", "-", stem).lower() + ".asl.json"
                if not isinstance(other_uri, str) or not (
                    Path(other_uri).name == expected
                    or Path(other_uri).name.startswith(stem.lower())
                ):
                    problems.append(
                        f"{machine_id}: substitution {name} names {target}, which deploys {other_uri}"
                    )
                continue
            if not name.endswith("FunctionArn"):
                continue
            target = getatt_target(value)
            if target is None:
                problems.append(
                    f"{machine_id}: substitution {name} is not `!GetAtt <Function>.Arn`"
                )
                continue
            function = all_resources.get(target)
            if not isinstance(function, dict) or function.get("Type") not in FUNCTION_TYPES:
                problems.append(
                    f"{machine_id}: substitution {name} names {target}, which is no function of "
                    "the template"
                )
                continue
            step = step_of(template, function)
            if isinstance(step, str) and binary_to_placeholder(step) != name:
                problems.append(
                    f"{machine_id}: substitution {name} names {target}, which serves the "
                    f"{step!r} step (its placeholder is {binary_to_placeholder(step)})"
                )
    if machine_files is None:
        machine_files = sorted(STATE_MACHINES.glob("*.asl.json"))
    for machine_file in machine_files:
        if machine_file.resolve() not in deployed:
            problems.append(
                f"{machine_file.name}: deployed by no AWS::Serverless::StateMachine of the "
                "template, so nothing provides its placeholders"
            )
    return problems


def check_paths(template: dict, template_dir: Path) -> list[str]:
    problems = []
    for resource_id, resource in resources(template).items():
        if not isinstance(resource, dict):
            continue
        kind = resource.get("Type")
        key = {
            "AWS::Serverless::Function": "CodeUri",
            "AWS::Serverless::StateMachine": "DefinitionUri",
            "AWS::Serverless::LayerVersion": "ContentUri",
        }.get(kind)
        if key is None:
            continue
        value = effective_properties(template, resource).get(key)
        if kind == "AWS::Serverless::Function" and value is None:
            if "ImageUri" not in (resource.get("Properties") or {}):
                problems.append(f"{resource_id}: has no {key}")
            continue
        if isinstance(value, str) and not value.startswith("s3://"):
            if not (template_dir / value).exists():
                problems.append(
                    f"{resource_id}: {key} {value!r} does not exist (relative to {template_dir})"
                )
            elif (resource.get("Metadata") or {}).get("BuildMethod") == "rust-cargolambda" and not (
                template_dir / value / "Cargo.toml"
            ).is_file():
                problems.append(
                    f"{resource_id}: {key} {value!r} has no Cargo.toml for cargo-lambda to build"
                )
    return problems


def check_functions(
    template: dict, steps: set[str], manifest: Path = FUNCTIONS_MANIFEST
) -> list[str]:
    """One function per step, each running the one bootstrap (the same build, so `sam build`
    builds it once) with SWITCHYARD_STEP naming its step, built and configured as Switchyard's."""
    problems = []
    if manifest.is_file() and f'name = "{BOOTSTRAP}"' not in manifest.read_text():
        problems.append(f"{manifest}: no [[bin]] named {BOOTSTRAP!r}")
    served: dict[str, list[str]] = {}
    for resource_id, resource in resources(template).items():
        if not isinstance(resource, dict) or resource.get("Type") not in FUNCTION_TYPES:
            continue
        if resource.get("Type") != "AWS::Serverless::Function":
            problems.append(f"{resource_id}: functions are AWS::Serverless::Function, built by SAM")
            continue
        metadata = resource.get("Metadata") or {}
        if metadata.get("BuildMethod") != "rust-cargolambda":
            problems.append(f"{resource_id}: Metadata BuildMethod is not rust-cargolambda")
        binary = (metadata.get("BuildProperties") or {}).get("Binary")
        if binary != BOOTSTRAP:
            problems.append(
                f"{resource_id}: builds {binary!r}, not the one bootstrap {BOOTSTRAP!r} every "
                "function runs"
            )
        properties = effective_properties(template, resource)
        step = step_of(template, resource)
        if not isinstance(step, str):
            problems.append(f"{resource_id}: no {STEP_VAR} in its environment names its step")
        else:
            served.setdefault(step, []).append(resource_id)
            if step not in steps:
                problems.append(f"{resource_id}: {STEP_VAR} {step!r} names no step of dispatch.rs")
        for key, expected in FUNCTION_SHAPE.items():
            if properties.get(key) != expected:
                problems.append(f"{resource_id}: {key} is {properties.get(key)!r}, not {expected!r}")
        if properties.get("Tracing") != "Active":
            problems.append(f"{resource_id}: Tracing is not Active")
        variables = (properties.get("Environment") or {}).get("Variables") or {}
        if "SWITCHYARD_PARAMETER_ROOT" not in variables:
            problems.append(f"{resource_id}: no SWITCHYARD_PARAMETER_ROOT in its environment")
        if "LogGroup" not in (properties.get("LoggingConfig") or {}):
            problems.append(f"{resource_id}: no LoggingConfig LogGroup (a log group with retention)")
    for step in sorted(steps - set(served)):
        problems.append(f"step {step!r}: no function of the template serves it")
    for step, functions in sorted(served.items()):
        if len(functions) > 1:
            problems.append(f"step {step!r} is served by several functions: {', '.join(functions)}")
    return problems


def role_references(resource_id: str, resource: dict) -> list[tuple[str, Any, bool]]:
    """(where, value, required) of each role a resource runs as: a function's or state machine's
    Role, a schedule's Target.RoleArn, a pipeline's RoleArn, each EventBridge rule target's RoleArn
    (optional there: not every target needs one)."""
    kind = resource.get("Type")
    properties = resource.get("Properties") or {}
    if kind in FUNCTION_TYPES | {"AWS::Serverless::StateMachine"}:
        return [(f"{resource_id}: Role", properties.get("Role"), True)]
    if kind in {"AWS::StepFunctions::StateMachine", "AWS::CodePipeline::Pipeline"}:
        return [(f"{resource_id}: RoleArn", properties.get("RoleArn"), True)]
    if kind == SCHEDULE_TYPE:
        target = properties.get("Target") or {}
        return [(f"{resource_id}: Target.RoleArn", target.get("RoleArn"), True)]
    if kind == "AWS::Events::Rule":
        return [
            (f"{resource_id}: Targets[{index}].RoleArn", target["RoleArn"], True)
            for index, target in enumerate(as_list(properties.get("Targets")))
            if isinstance(target, dict) and "RoleArn" in target
        ]
    return []


def check_roles(template: dict) -> list[str]:
    """Each function, state machine, schedule, pipeline and rule target has a role of its own,
    trusting only its service, created under the same Condition as its user."""
    problems = []
    all_resources = resources(template)
    users: dict[str, list[str]] = {}
    for resource_id, resource in all_resources.items():
        if not isinstance(resource, dict):
            continue
        kind = resource.get("Type")
        for where, value, _required in role_references(resource_id, resource):
            role = getatt_target(value)
            if role is None:
                problems.append(
                    f"{where} is not `!GetAtt <Role>.Arn` of a role in this template "
                    "(each function, state machine and schedule needs its own least-privilege "
                    "role)"
                )
                continue
            if (all_resources.get(role) or {}).get("Type") != "AWS::IAM::Role":
                problems.append(f"{where} names {role}, which is no AWS::IAM::Role")
                continue
            if resource_id not in users.setdefault(role, []):
                users[role].append(resource_id)
            role_resource = all_resources[role]
            if role_resource.get("Condition") != resource.get("Condition"):
                problems.append(
                    f"{role}: created under Condition {role_resource.get('Condition')!r}, but its "
                    f"user {resource_id} under {resource.get('Condition')!r}: a role goes with "
                    "the resource that uses it"
                )
            trust = (role_resource.get("Properties") or {}).get("AssumeRolePolicyDocument") or {}
            services = set()
            for statement in as_list(trust.get("Statement")):
                principal = statement.get("Principal") if isinstance(statement, dict) else None
                if not isinstance(principal, dict) or set(principal) != {"Service"}:
                    problems.append(f"{role}: trusts a principal other than a service: {principal!r}")
                    continue
                services.update(as_list(principal["Service"]))
            if services != {TRUSTED_SERVICE[kind]}:
                problems.append(
                    f"{role}: trusts {sorted(services)}, but {resource_id} needs exactly "
                    f"{TRUSTED_SERVICE[kind]}"
                )
    for role, role_users in sorted(users.items()):
        if len(role_users) > 1:
            problems.append(
                f"{role}: used by {', '.join(role_users)}: each function needs a role of its own"
            )
    for resource_id, resource in all_resources.items():
        if isinstance(resource, dict) and resource.get("Type") == "AWS::IAM::Role":
            if resource_id not in users:
                problems.append(
                    f"{resource_id}: a role no function, state machine, schedule, pipeline or "
                    "rule uses"
                )
    return problems


def sub_text(value: Any, parameters: dict | None = None) -> str | None:
    """The text of a plain string or of `!Sub` (either form), with every ${...} replaced by a
    placeholder word, so that what is left can be parsed; None for anything else. A JSON
    literal's parameter (a Number, or a "true"/"false" choice) is replaced by its Default, which
    stands unquoted in the JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and list(value) == ["Fn::Sub"]:
        body = value["Fn::Sub"]
        if isinstance(body, list) and body:
            body = body[0]
        if isinstance(body, str):

            def literal(match: re.Match) -> str:
                parameter = (parameters or {}).get(match.group(1))
                if isinstance(parameter, dict) and "Default" in parameter:
                    choices = parameter.get("AllowedValues")
                    if parameter.get("Type") == "Number" or (
                        isinstance(choices, list) and set(map(str, choices)) <= {"true", "false"}
                    ):
                        return str(parameter["Default"])
                return "placeholder"

            return PLACEHOLDER.sub(literal, body.replace("${!", "${"))
    return None


def raw_sub(value: Any) -> str | None:
    """The body of `!Sub` (either form), or None."""
    if isinstance(value, dict) and list(value) == ["Fn::Sub"]:
        body = value["Fn::Sub"]
        if isinstance(body, list) and body:
            body = body[0]
        return body if isinstance(body, str) else None
    return None


def has_distributed_map(node: Any) -> bool:
    if isinstance(node, dict):
        config = node.get("ProcessorConfig")
        if isinstance(config, dict) and config.get("Mode") == "DISTRIBUTED":
            return True
        return any(has_distributed_map(child) for child in node.values())
    if isinstance(node, list):
        return any(has_distributed_map(child) for child in node)
    return False


def check_execution_grants(template: dict, template_dir: Path) -> list[str]:
    """A state machine's role may start only the machines its definition starts (the
    `${<Name>StateMachineArn}` it substitutes, by `!Ref`) and, when it has a Map in Distributed
    mode, itself (its Map Run's children), named by the `Name` it is given."""
    problems = []
    all_resources = resources(template)
    for machine_id, machine in all_resources.items():
        if not isinstance(machine, dict) or machine.get("Type") != "AWS::Serverless::StateMachine":
            continue
        properties = effective_properties(template, machine)
        role_id = getatt_target(properties.get("Role"))
        role = all_resources.get(role_id) if role_id else None
        if not isinstance(role, dict):
            continue
        allowed_refs = {
            value.get("Ref")
            for name, value in (properties.get("DefinitionSubstitutions") or {}).items()
            if name.endswith("StateMachineArn") and isinstance(value, dict)
        }
        uri = properties.get("DefinitionUri")
        path = (template_dir / uri).resolve() if isinstance(uri, str) else None
        distributed = False
        if path is not None and path.is_file():
            try:
                distributed = has_distributed_map(json.loads(path.read_text()))
            except json.JSONDecodeError:
                pass  # asl-validator reports it
        own_name = raw_sub(properties.get("Name"))
        for statement in iter_statements({"Resources": {role_id: role}}):
            if not is_allow(statement) or "states:StartExecution" not in actions_of(statement):
                continue
            for resource in as_list(statement.node.get("Resource")):
                ref = resource.get("Ref") if isinstance(resource, dict) else None
                if ref in allowed_refs:
                    continue
                body = raw_sub(resource)
                if (
                    distributed
                    and own_name is not None
                    and body is not None
                    and body.endswith(f":stateMachine:{own_name}")
                ):
                    continue
                why = (
                    "itself, which it may start only for a Distributed Map and by the Name it is given"
                    if body is not None and ":stateMachine:" in body
                    else "a machine its definition does not start"
                )
                problems.append(
                    f"{role_id} ({machine_id}'s role) {statement.path}: states:StartExecution on "
                    f"{resource!r}: {why}"
                )
    return problems


EXECUTION_ENDINGS = {"FAILED", "TIMED_OUT", "ABORTED"}


def alert_target(target: Any) -> bool:
    """A rule target that is the alert topic: the stack's own, or the one given."""
    arn = target.get("Arn") if isinstance(target, dict) else None
    if isinstance(arn, dict) and arn.get("Ref") in {"AlertTopic", "AlertTopicArn"}:
        return True
    if isinstance(arn, dict) and "Fn::If" in arn:
        branches = arn["Fn::If"][1:] if isinstance(arn["Fn::If"], list) else []
        return bool(branches) and all(
            isinstance(b, dict) and b.get("Ref") in {"AlertTopic", "AlertTopicArn"} for b in branches
        )
    return False


def check_alerts(template: dict) -> list[str]:
    """Every state machine's bad endings reach the alert topic; a RollbackIncomplete has a rule
    of its own; the topic lets exactly these rules publish; a message names only fields its
    transformer reads."""
    problems = []
    all_resources = resources(template)
    machines = sorted(
        rid
        for rid, r in all_resources.items()
        if isinstance(r, dict) and r.get("Type") == "AWS::Serverless::StateMachine"
    )
    covered: set[str] = set()
    rollback_rule = False
    alert_rules: list[str] = []
    for rule_id, rule in all_resources.items():
        if not isinstance(rule, dict) or rule.get("Type") != "AWS::Events::Rule":
            continue
        properties = rule.get("Properties") or {}
        pattern = properties.get("EventPattern") or {}
        if as_list(pattern.get("source")) != ["aws.states"]:
            continue
        targets = [t for t in as_list(properties.get("Targets")) if alert_target(t)]
        if not targets:
            continue
        alert_rules.append(rule_id)
        detail = pattern.get("detail") or {}
        statuses = set(as_list(detail.get("status")))
        refs = {
            m.get("Ref") for m in as_list(detail.get("stateMachineArn")) if isinstance(m, dict)
        }
        if as_list(pattern.get("detail-type")) != ["Step Functions Execution Status Change"]:
            problems.append(f"{rule_id}: detail-type must be Step Functions Execution Status Change")
        if "RollbackIncomplete" in as_list(detail.get("error")) and "DeployStateMachine" in refs:
            rollback_rule = True
        elif statuses >= EXECUTION_ENDINGS:
            covered |= {r for r in refs if isinstance(r, str)}
        for target in targets:
            transformer = target.get("InputTransformer") or {}
            names = set((transformer.get("InputPathsMap") or {}).keys())
            used = set(re.findall(r"<([A-Za-z0-9_.-]+)>", str(transformer.get("InputTemplate", ""))))
            # EventBridge reads every <name> as a placeholder; its own are aws.events.*.
            for name in sorted(u for u in used - names if not u.startswith("aws.events.")):
                problems.append(
                    f"{rule_id}: the message uses <{name}>, which InputPathsMap does not define"
                )
    for machine in machines:
        if machine not in covered:
            problems.append(
                f"{machine}: no EventBridge rule sends its FAILED, TIMED_OUT and ABORTED "
                "executions to the alert topic"
            )
    if machines and not rollback_rule:
        problems.append("no EventBridge rule names a deploy's RollbackIncomplete to the alert topic")
    policy = all_resources.get("AlertTopicPolicy")
    if isinstance(policy, dict):
        allowed: set[str] = set()
        for statement in as_list(((policy.get("Properties") or {}).get("PolicyDocument") or {}).get("Statement")):
            condition = (statement or {}).get("Condition") or {}
            for arn in as_list((condition.get("ArnEquals") or {}).get("aws:SourceArn")):
                target = getatt_target(arn)
                if target:
                    allowed.add(target)
        for rule_id in alert_rules:
            if rule_id not in allowed:
                problems.append(
                    f"{rule_id}: AlertTopicPolicy does not let it publish (aws:SourceArn), so its "
                    "alerts would be dropped"
                )
        for rule_id in sorted(allowed - set(alert_rules)):
            problems.append(f"AlertTopicPolicy lets {rule_id} publish, which is no alert rule")
    return problems


def check_schedules(template: dict, template_dir: Path) -> list[str]:
    """Each schedule starts a state machine of the template with a JSON object as its input; the
    deploy machine's input holds DeployState's request fields and nothing else."""
    problems = []
    all_resources = resources(template)
    for resource_id, resource in all_resources.items():
        if not isinstance(resource, dict) or resource.get("Type") != SCHEDULE_TYPE:
            continue
        target = (resource.get("Properties") or {}).get("Target") or {}
        arn = target.get("Arn")
        machine_id = None
        if isinstance(arn, dict) and list(arn) == ["Ref"]:
            machine_id = arn["Ref"]
        elif getatt_target(arn) is not None:
            machine_id = getatt_target(arn)
        machine = all_resources.get(machine_id) if isinstance(machine_id, str) else None
        if not isinstance(machine, dict) or machine.get("Type") not in STATE_MACHINE_TYPES:
            problems.append(
                f"{resource_id}: Target.Arn is not `!Ref <StateMachine>` of a state machine of "
                "this template"
            )
            continue
        text = sub_text(target.get("Input"), template.get("Parameters") or {})
        if text is None:
            problems.append(f"{resource_id}: Target.Input is not a string or `!Sub` string")
            continue
        try:
            document = json.loads(text)
        except json.JSONDecodeError as err:
            problems.append(f"{resource_id}: Target.Input is not JSON ({err})")
            continue
        if not isinstance(document, dict):
            problems.append(f"{resource_id}: Target.Input is not a JSON object")
            continue
        uri = effective_properties(template, machine).get("DefinitionUri")
        if isinstance(uri, str) and Path(uri).name == SWEEP_MACHINE_FILE:
            problems.extend(check_sweep_input(resource_id, machine_id, document))
            continue
        if isinstance(uri, str) and Path(uri).name == REFRESH_MACHINE_FILE:
            problems.extend(check_refresh_input(resource_id, machine_id, document))
            continue
        if not (isinstance(uri, str) and Path(uri).name == DEPLOY_MACHINE_FILE):
            continue
        unknown = sorted(set(document) - DEPLOY_REQUEST_FIELDS)
        if unknown:
            close = {
                key: difflib.get_close_matches(key, sorted(DEPLOY_REQUEST_FIELDS), n=1)
                for key in unknown
            }
            hints = ", ".join(
                f"{key!r}" + (f" (did you mean {close[key][0]!r}?)" if close[key] else "")
                for key in unknown
            )
            problems.append(
                f"{resource_id}: Target.Input for {machine_id} has {hints}, which the deploy "
                f"machine's input does not have (it takes {', '.join(sorted(DEPLOY_REQUEST_FIELDS))})"
            )
        if "namespace" not in document:
            problems.append(f"{resource_id}: Target.Input for {machine_id} has no 'namespace'")
        sources = [
            key for key in ("source_namespace", "snapshot_id", "promote_from") if key in document
        ]
        if len(sources) != 1:
            problems.append(
                f"{resource_id}: Target.Input for {machine_id} must give exactly one of "
                f"'source_namespace', 'snapshot_id' and 'promote_from' (it gives {sources or 'neither'})"
            )
        if "promoted_execution" in document and "promote_from" not in document:
            problems.append(
                f"{resource_id}: Target.Input for {machine_id} gives 'promoted_execution' "
                "without 'promote_from'"
            )
        for key, value in document.items():
            if key in DEPLOY_REQUEST_FIELDS and not (isinstance(value, str) and value):
                problems.append(
                    f"{resource_id}: Target.Input for {machine_id} gives {key!r} as {value!r}, "
                    "not a non-empty string"
                )
    return problems


def check_refresh_input(resource_id: str, machine_id: str, document: dict) -> list[str]:
    """The refresh machine's input: `pairs`, a string of comma-separated TARGET<SOURCE pairs (a
    parameter stands for a pair here, which the parameter's own AllowedPattern checks)."""
    pairs = document.get("pairs")
    if set(document) != {"pairs"} or not isinstance(pairs, str):
        return [
            f"{resource_id}: Target.Input for {machine_id} is {json.dumps(document)}: the refresh "
            "machine takes only 'pairs', a string"
        ]
    bad = [p for p in pairs.split(",") if p != "placeholder" and not REFRESH_PAIR.fullmatch(p)]
    if bad:
        return [
            f"{resource_id}: Target.Input for {machine_id} has {', '.join(map(repr, bad))}, not "
            "a TARGET<SOURCE pair of namespaces (xy-0146-qa<xy-0146-prod)"
        ]
    return []


def check_sweep_input(resource_id: str, machine_id: str, document: dict) -> list[str]:
    """The sweep machine's input: only OrphanSweep's request fields, each of its type. A `!Sub`
    of a Number parameter reads as `${Param}` here, which json.loads cannot parse, so the
    template's parameters are substituted by sub_text's caller only as far as JSON needs."""
    problems = []
    for key, value in document.items():
        expected = SWEEP_REQUEST_FIELDS.get(key)
        if expected is None:
            problems.append(
                f"{resource_id}: Target.Input for {machine_id} has {key!r}, which the sweep "
                f"machine's input does not have (it takes {', '.join(sorted(SWEEP_REQUEST_FIELDS))})"
            )
        elif not (isinstance(value, expected) and not (expected is int and isinstance(value, bool))):
            problems.append(
                f"{resource_id}: Target.Input for {machine_id} gives {key!r} as {value!r}, "
                f"not a JSON {'boolean' if expected is bool else 'integer'}"
            )
    return problems


def check_real_actions(template: dict) -> list[str]:
    """Every action a template uses is a real one (for templates without a known_actions list)."""
    used = {a: s for a, s in template_actions(template).items() if "*" not in a and "?" not in a}
    prefixes = {action.split(":", 1)[0] for action in used if ":" in action}
    operations = load_operations(prefixes)
    iam_actions = load_iam_actions() or {}
    problems = []
    for action, statements in sorted(used.items()):
        for why in action_problems(action, operations, iam_actions):
            problems.append(f"{statements[0].where()}: {why}")
    return problems


# ------------------------------------------------------------------------------------------------
# Scope: what a function may change is what Switchyard owns, by tag
# ------------------------------------------------------------------------------------------------

NAMESPACE_TAG = "switchyard:namespace"
NAMESPACE_PATTERNS = "NamespacePatterns"
# RDS actions that only read.
RDS_READ_PREFIXES = ("rds:Describe", "rds:List")
# Resources an action may name without the tag condition: what a restore reads from, not what it
# creates (scoping it would refuse a given snapshot: automated ones carry no Switchyard tags), and
# a delete's final snapshot, which carries tags only when its database copies them (the database
# deleted is scoped by its own tag, and a new snapshot destroys nothing).
UNSCOPED_RESOURCES = {
    "rds:RestoreDBInstanceFromDBSnapshot": (":snapshot:", ":og:", ":pg:", ":subgrp:"),
    "rds:CreateDBSnapshot": (":snapshot:*-final-*",),
}


def scoped_by_namespace(condition: Any) -> bool:
    """Whether a Condition holds the namespace tag (of the resource or the request) to
    `!Ref NamespacePatterns` with StringLike."""
    like = (condition or {}).get("StringLike") if isinstance(condition, dict) else None
    if not isinstance(like, dict):
        return False
    wanted = {"Ref": NAMESPACE_PATTERNS}
    return any(
        like.get(f"{kind}/{NAMESPACE_TAG}") == wanted for kind in ("aws:ResourceTag", "aws:RequestTag")
    )


def check_namespace_scope(template: dict) -> list[str]:
    """Every Allow statement with an RDS action that changes something names instances or
    snapshots only under the namespace-tag condition."""
    problems = []
    for statement in iter_statements(template):
        if not is_allow(statement):
            continue
        mutating = [
            a for a in actions_of(statement) if a.startswith("rds:") and not a.startswith(RDS_READ_PREFIXES)
        ]
        if not mutating or scoped_by_namespace(statement.node.get("Condition")):
            continue
        for value in as_list(statement.node.get("Resource")):
            text = sub_text(value) or ""
            if ":db:" not in text and ":snapshot:" not in text and text != "*":
                continue
            if all(
                any(source in text for source in UNSCOPED_RESOURCES.get(action, ()))
                for action in mutating
            ):
                continue
            problems.append(
                f"{statement.where()}: {', '.join(mutating)} on {text} without the condition "
                f"StringLike aws:ResourceTag/{NAMESPACE_TAG} (or aws:RequestTag/{NAMESPACE_TAG}) "
                f"= !Ref {NAMESPACE_PATTERNS}: a function may change only what belongs to a "
                "namespace this installation serves"
            )
    return problems


def glob_match(pattern: str, value: str) -> bool:
    """IAM's string and ARN matching: `*` any run of characters, `?` one, case-sensitive."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, flags=re.DOTALL) is not None


def resolve(value: Any, parameters: dict[str, Any]) -> list[str] | None:
    """A policy value with the stack's parameters put in: a list of strings, or None for what
    cannot be known offline (a `!GetAtt`)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        out: list[str] = []
        for item in value:
            resolved = resolve(item, parameters)
            if resolved is None:
                return None
            out.extend(resolved)
        return out
    if isinstance(value, dict) and list(value) == ["Ref"]:
        got = parameters.get(value["Ref"])
        return None if got is None else [str(v) for v in as_list(got)]
    if isinstance(value, dict) and list(value) == ["Fn::Sub"]:
        body = raw_sub(value)
        if body is None:
            return None

        def put(match: re.Match) -> str:
            got = parameters.get(match.group(1))
            if got is None or isinstance(got, list):
                raise KeyError(match.group(1))
            return str(got)

        try:
            return [PLACEHOLDER.sub(put, body)]
        except KeyError:
            return None
    return None


def condition_holds(condition: Any, context: dict[str, Any], parameters: dict[str, Any]) -> bool:
    """The operators Switchyard's policies use; a key missing from the request fails every
    operator but `Null`. Values of one key are ORed, keys and operators ANDed."""
    if not condition:
        return True
    for operator, tests in condition.items():
        for key, wanted in tests.items():
            values = resolve(wanted, parameters) or []
            present = context.get(key)
            if operator == "Null":
                if (present is None) != (values == ["true"]):
                    return False
                continue
            if present is None:
                return False
            actual = [str(v) for v in as_list(present)]
            if operator == "StringEquals":
                ok = any(a == v for a in actual for v in values)
            elif operator in ("StringLike", "ArnLike"):
                ok = any(glob_match(v, a) for a in actual for v in values)
            else:
                raise TemplateError(f"evaluate: condition operator {operator} is not modelled")
            if not ok:
                return False
    return True


def evaluate(
    template: dict,
    role_id: str,
    action: str,
    resource_arn: str,
    context: dict[str, Any],
    parameters: dict[str, Any],
) -> bool:
    """Whether the role's inline statements allow the request (no Deny is modelled: the template
    has none). `context` holds the request's condition keys (`aws:ResourceTag/...`,
    `aws:RequestTag/...`, `ecs:cluster`); `parameters` the stack's, with AWS::Partition,
    AWS::Region and AWS::AccountId."""
    for statement in iter_statements(template):
        if statement.resource_id != role_id or not is_allow(statement):
            continue
        if not any(glob_match(a, action) for a in actions_of(statement)):
            continue
        patterns = resolve(statement.node.get("Resource"), parameters)
        if patterns is None or not any(glob_match(p, resource_arn) for p in patterns):
            continue
        if condition_holds(statement.node.get("Condition"), context, parameters):
            return True
    return False


# ------------------------------------------------------------------------------------------------


def run_all(
    template_path: Path = TEMPLATE,
    known_actions_path: Path = KNOWN_ACTIONS,
    steps: set[str] | None = None,
    machine_files: list[Path] | None = None,
) -> list[str]:
    text = template_path.read_text()
    template = load_template(text)
    template_dir = template_path.resolve().parent
    return [
        *check_wildcard_actions(template),
        *check_resource_star(template, text),
        *check_known_actions(template, known_actions_path.read_text()),
        *check_state_machines(template, template_dir, machine_files),
        *check_paths(template, template_dir),
        *check_functions(template, step_names() if steps is None else steps),
        *check_roles(template),
        *check_execution_grants(template, template_dir),
        *check_alerts(template),
        *check_schedules(template, template_dir),
        *check_namespace_scope(template),
    ]


def run_iam(template_path: Path) -> list[str]:
    """The IAM rules alone, for a template that is not Switchyard's SAM template."""
    text = template_path.read_text()
    template = load_template(text)
    return [
        *check_wildcard_actions(template),
        *check_resource_star(template, text),
        *check_real_actions(template),
        *check_roles(template),
    ]


def main(argv: list[str]) -> int:
    args = argv[1:]
    iam_only = bool(args) and args[0] == "--iam-only"
    if iam_only:
        args = args[1:]
        if len(args) != 1:
            print("usage: check.py [TEMPLATE] | check.py --iam-only TEMPLATE", file=sys.stderr)
            return 2
    template_path = Path(args[0]) if args else TEMPLATE
    try:
        problems = run_iam(template_path) if iam_only else run_all(template_path)
    except (TemplateError, OSError) as err:
        print(f"check.py: {err}", file=sys.stderr)
        return 2
    name = template_path.name
    if problems:
        for problem in problems:
            print(f"{name}: {problem}", file=sys.stderr)
        print(f"check.py: {len(problems)} problem(s) in {template_path}", file=sys.stderr)
        return 1
    actions = len(template_actions(load_template(template_path.read_text())))
    what = "all real" if iam_only else "all known"
    print(f"check.py: {template_path} ok ({actions} IAM actions, {what})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
