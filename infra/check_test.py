"""check.py catches what it is for: broken templates fail, the real one passes.

Run with the project's venv: `.venv/bin/python -m unittest infra/check_test.py`.
"""

from __future__ import annotations

import copy
import sys
import tempfile
import textwrap
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import check  # noqa: E402


def role(statements: str, resource_id: str = "SomeRole") -> str:
    """A template with one role whose inline policy has `statements` (YAML list items at
    column 0, re-indented here)."""
    body = textwrap.indent(textwrap.dedent(statements).strip("\n"), " " * 14)
    return textwrap.dedent(
        """\
        Resources:
          {resource_id}:
            Type: AWS::IAM::Role
            Properties:
              AssumeRolePolicyDocument:
                Statement:
                  - Effect: Allow
                    Principal:
                      Service: lambda.amazonaws.com
                    Action: sts:AssumeRole
              Policies:
                - PolicyName: p
                  PolicyDocument:
                    Statement:
        """
    ).format(resource_id=resource_id) + body + "\n"


def problems_of(check_fn, text: str, *args) -> list[str]:
    return check_fn(check.load_template(text), *args)


class WildcardActions(unittest.TestCase):
    def test_star_action_is_caught(self) -> None:
        text = role(
            """
            - Effect: Allow
              Action: "*"
              Resource: arn:aws:s3:::bucket
            """
        )
        problems = problems_of(check.check_wildcard_actions, text)
        self.assertEqual(len(problems), 1, problems)
        self.assertIn("allows the action '*'", problems[0])

    def test_service_star_action_is_caught(self) -> None:
        text = role(
            """
            - Effect: Allow
              Action: [ssm:GetParameter, "rds:*"]
              Resource: arn:aws:rds:eu-west-1:123456789012:db:xy-*
            """
        )
        problems = problems_of(check.check_wildcard_actions, text)
        self.assertEqual(len(problems), 1, problems)
        self.assertIn("'rds:*'", problems[0])

    def test_partial_wildcard_and_not_action_are_caught(self) -> None:
        text = role(
            """
            - Effect: Allow
              Action: rds:Describe*
              Resource: arn:aws:rds:eu-west-1:123456789012:db:xy-*
            - Effect: Allow
              NotAction: iam:*
              Resource: arn:aws:rds:eu-west-1:123456789012:db:xy-*
            """
        )
        problems = problems_of(check.check_wildcard_actions, text)
        self.assertTrue(any("rds:Describe*" in p for p in problems), problems)
        self.assertTrue(any("NotAction" in p for p in problems), problems)

    def test_named_actions_pass(self) -> None:
        text = role(
            """
            - Effect: Allow
              Action: [rds:DescribeDBInstances]
              Resource: arn:aws:rds:eu-west-1:123456789012:db:xy-*
            """
        )
        self.assertEqual(problems_of(check.check_wildcard_actions, text), [])


class ResourceStar(unittest.TestCase):
    def test_uncommented_resource_star_is_caught(self) -> None:
        text = role(
            """
            # An ordinary comment does not count.
            - Effect: Allow
              Action: ecs:ListTaskDefinitions
              Resource: "*"
            """
        )
        problems = check.check_resource_star(check.load_template(text), text)
        self.assertEqual(len(problems), 1, problems)
        self.assertIn("resource-star", problems[0])
        self.assertIn("ecs:ListTaskDefinitions", problems[0])

    def test_star_in_a_list_is_caught(self) -> None:
        text = role(
            """
            - Effect: Allow
              Action: ecs:ListTaskDefinitions
              Resource: [arn:aws:ecs:eu-west-1:123456789012:service/c/s, "*"]
            """
        )
        self.assertEqual(len(check.check_resource_star(check.load_template(text), text)), 1)

    def test_comment_just_above_explains_it(self) -> None:
        text = role(
            """
            # resource-star: ListTaskDefinitions supports no resource-level permissions.
            # (a second comment line may follow it)
            - Effect: Allow
              Action: ecs:ListTaskDefinitions
              Resource: "*"
            - Effect: Allow
              Action: ecs:DescribeTaskDefinition
              Resource: "*"
            """
        )
        problems = check.check_resource_star(check.load_template(text), text)
        # The comment covers the first statement only.
        self.assertEqual(len(problems), 1, problems)
        self.assertIn("ecs:DescribeTaskDefinition", problems[0])


class KnownActions(unittest.TestCase):
    def test_misspelled_action_listed_is_caught(self) -> None:
        text = role(
            """
            - Effect: Allow
              Action: rds:DescribeDBInstance
              Resource: arn:aws:rds:eu-west-1:123456789012:db:xy-*
            """
        )
        problems = problems_of(check.check_known_actions, text, "rds:DescribeDBInstance\nsts:AssumeRole\n")
        self.assertTrue(
            any("no operation of rds" in p and "rds:DescribeDBInstances" in p for p in problems),
            problems,
        )

    def test_misspelled_action_unlisted_is_caught(self) -> None:
        text = role(
            """
            - Effect: Allow
              Action: ssm:GetParameters_ByPath
              Resource: arn:aws:ssm:eu-west-1:123456789012:parameter/switchyard/*
            """
        )
        problems = problems_of(check.check_known_actions, text, "sts:AssumeRole\n")
        self.assertEqual(len(problems), 1, problems)
        self.assertIn("not listed", problems[0])
        self.assertIn("no operation of ssm", problems[0])

    def test_wrong_case_is_caught(self) -> None:
        text = role(
            """
            - Effect: Allow
              Action: rds:DescribeDbInstances
              Resource: arn:aws:rds:eu-west-1:123456789012:db:xy-*
            """
        )
        problems = problems_of(check.check_known_actions, text, "rds:DescribeDbInstances\nsts:AssumeRole\n")
        self.assertTrue(any("rds:DescribeDBInstances" in p for p in problems), problems)

    def test_permission_only_and_unused_entries(self) -> None:
        text = role(
            """
            - Effect: Allow
              Action: iam:PassRole
              Resource: arn:aws:iam::123456789012:role/task
            """
        )
        known = "iam:PassRole\nsts:AssumeRole\nrds:DeleteDBInstance\n"
        problems = problems_of(check.check_known_actions, text, known)
        self.assertEqual(len(problems), 1, problems)
        self.assertIn("'rds:DeleteDBInstance' is listed but the template does not use it", problems[0])


FUNCTION = """\
  {name}Function:
    Type: AWS::Serverless::Function
    Metadata:
      BuildMethod: rust-cargolambda
      BuildProperties:
        Binary: switchyard-lambda
    Properties:
      Environment:
        Variables:
          SWITCHYARD_STEP: {binary}
      Role: !GetAtt {role}.Arn
      LoggingConfig:
        LogGroup: g
  {name}Role:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Statement:
          - Effect: Allow
            Principal:
              Service: lambda.amazonaws.com
            Action: sts:AssumeRole
"""


MACHINE_ROLE = """\
  MachineRole:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Statement:
          - Effect: Allow
            Principal:
              Service: states.amazonaws.com
            Action: sts:AssumeRole
"""


class StateMachinesAndFunctions(unittest.TestCase):
    def setUp(self) -> None:
        self.dir = Path(tempfile.mkdtemp())
        (self.dir / "infra").mkdir()
        (self.dir / "machines").mkdir()
        (self.dir / "Cargo.toml").write_text("[workspace]\n")
        self.steps = {"check-db", "create-db"}
        self.machine = self.dir / "machines" / "deploy.asl.json"
        self.machine.write_text(
            '{"StartAt": "A", "States": {"A": {"Type": "Task", '
            '"Resource": "${CheckDbFunctionArn}", "Next": "B"}, '
            '"B": {"Type": "Task", "Resource": "${CreateDbFunctionArn}", "End": true}}}'
        )

    def tearDown(self) -> None:
        import shutil

        shutil.rmtree(self.dir)

    def template(self, substitutions: str, functions: str | None = None) -> str:
        if functions is None:
            functions = FUNCTION.format(name="CheckDb", binary="check-db", role="CheckDbRole")
            functions += FUNCTION.format(name="CreateDb", binary="create-db", role="CreateDbRole")
        return (
            textwrap.dedent(
                """\
                Transform: AWS::Serverless-2016-10-31
                Globals:
                  Function:
                    Runtime: provided.al2023
                    Architectures: [arm64]
                    Handler: bootstrap
                    CodeUri: ..
                    Tracing: Active
                    Environment:
                      Variables:
                        SWITCHYARD_PARAMETER_ROOT: /switchyard
                Resources:
                  Machine:
                    Type: AWS::Serverless::StateMachine
                    Properties:
                      DefinitionUri: ../machines/deploy.asl.json
                      Role: !GetAtt MachineRole.Arn
                      DefinitionSubstitutions:
                """
            )
            + textwrap.indent(textwrap.dedent(substitutions).strip("\n"), " " * 8)
            + "\n"
            + MACHINE_ROLE
            + functions
        )

    def machine_problems(self, text: str) -> list[str]:
        return check.check_state_machines(
            check.load_template(text), self.dir / "infra", [self.machine]
        )

    def test_complete_substitutions_pass(self) -> None:
        text = self.template(
            """
            CheckDbFunctionArn: !GetAtt CheckDbFunction.Arn
            CreateDbFunctionArn: !GetAtt CreateDbFunction.Arn
            """
        )
        template = check.load_template(text)
        self.assertEqual(self.machine_problems(text), [])
        self.assertEqual(check.check_paths(template, self.dir / "infra"), [])
        self.assertEqual(check.check_functions(template, self.steps), [])
        self.assertEqual(check.check_roles(template), [])

    def test_missing_placeholder_is_caught(self) -> None:
        text = self.template("CheckDbFunctionArn: !GetAtt CheckDbFunction.Arn")
        problems = self.machine_problems(text)
        self.assertEqual(len(problems), 1, problems)
        self.assertIn("${CreateDbFunctionArn}", problems[0])

    def test_substitution_of_a_missing_function_is_caught(self) -> None:
        text = self.template(
            """
            CheckDbFunctionArn: !GetAtt CheckDbFunction.Arn
            CreateDbFunctionArn: !GetAtt CreateDatabaseFunction.Arn
            """
        )
        problems = self.machine_problems(text)
        self.assertEqual(len(problems), 1, problems)
        self.assertIn("CreateDatabaseFunction, which is no function", problems[0])

    def test_crossed_substitution_is_caught(self) -> None:
        text = self.template(
            """
            CheckDbFunctionArn: !GetAtt CreateDbFunction.Arn
            CreateDbFunctionArn: !GetAtt CreateDbFunction.Arn
            """
        )
        problems = self.machine_problems(text)
        self.assertEqual(len(problems), 1, problems)
        self.assertIn("serves the 'create-db' step", problems[0])

    def test_undeployed_machine_is_caught(self) -> None:
        other = self.dir / "machines" / "other.asl.json"
        other.write_text('{"StartAt": "A", "States": {"A": {"Type": "Succeed"}}}')
        text = self.template(
            """
            CheckDbFunctionArn: !GetAtt CheckDbFunction.Arn
            CreateDbFunctionArn: !GetAtt CreateDbFunction.Arn
            """
        )
        problems = check.check_state_machines(
            check.load_template(text), self.dir / "infra", [self.machine, other]
        )
        self.assertEqual(len(problems), 1, problems)
        self.assertIn("other.asl.json: deployed by no", problems[0])

    def test_missing_definition_uri_file_is_caught(self) -> None:
        text = self.template("CheckDbFunctionArn: !GetAtt CheckDbFunction.Arn").replace(
            "deploy.asl.json", "gone.asl.json"
        )
        problems = check.check_paths(check.load_template(text), self.dir / "infra")
        self.assertEqual(len(problems), 1, problems)
        self.assertIn("'../machines/gone.asl.json' does not exist", problems[0])

    def test_missing_code_uri_is_caught(self) -> None:
        text = self.template("X: y").replace("CodeUri: ..", "CodeUri: ../nowhere")
        problems = check.check_paths(check.load_template(text), self.dir / "infra")
        self.assertEqual(len(problems), 2, problems)
        self.assertIn("CodeUri '../nowhere' does not exist", problems[0])

    def test_function_without_step_and_step_without_function_are_caught(self) -> None:
        functions = FUNCTION.format(name="CheckDb", binary="check-db", role="CheckDbRole")
        functions += FUNCTION.format(name="CreateDb", binary="create-dbs", role="CreateDbRole")
        template = check.load_template(self.template("X: y", functions))
        problems = check.check_functions(template, self.steps)
        self.assertTrue(any("'create-dbs' names no step" in p for p in problems), problems)
        self.assertTrue(any("step 'create-db': no function" in p for p in problems), problems)

    def test_a_function_on_its_own_binary_is_caught(self) -> None:
        functions = FUNCTION.format(name="CheckDb", binary="check-db", role="CheckDbRole")
        functions += FUNCTION.format(name="CreateDb", binary="create-db", role="CreateDbRole")
        functions = functions.replace(
            "Binary: switchyard-lambda\n    Properties:\n      Environment:\n        Variables:\n          SWITCHYARD_STEP: create-db",
            "Binary: create-db\n    Properties:\n      Environment:\n        Variables:\n          SWITCHYARD_STEP: create-db",
        )
        template = check.load_template(self.template("X: y", functions))
        problems = check.check_functions(template, self.steps)
        self.assertEqual(len(problems), 1, problems)
        self.assertIn("builds 'create-db', not the one bootstrap", problems[0])

    def test_a_function_without_its_step_is_caught(self) -> None:
        functions = FUNCTION.format(name="CheckDb", binary="check-db", role="CheckDbRole")
        functions = functions.replace("          SWITCHYARD_STEP: check-db\n", "          OTHER: x\n")
        template = check.load_template(self.template("X: y", functions))
        problems = check.check_functions(template, {"check-db"})
        self.assertTrue(any("no SWITCHYARD_STEP" in p for p in problems), problems)
        # The globals' variables still reach it, as SAM merges them.
        self.assertFalse(any("SWITCHYARD_PARAMETER_ROOT" in p for p in problems), problems)

    def test_the_steps_are_read_from_dispatch(self) -> None:
        steps = check.step_names()
        self.assertIn("create-db", steps)
        self.assertIn("fleet-failed", steps)
        self.assertGreaterEqual(len(steps), 20)

    def test_shared_role_is_caught(self) -> None:
        functions = FUNCTION.format(name="CheckDb", binary="check-db", role="CheckDbRole")
        functions += FUNCTION.format(name="CreateDb", binary="create-db", role="CheckDbRole")
        problems = check.check_roles(check.load_template(self.template("X: y", functions)))
        self.assertTrue(
            any("CheckDbRole: used by CheckDbFunction, CreateDbFunction" in p for p in problems),
            problems,
        )
        self.assertTrue(any("CreateDbRole: a role no function" in p for p in problems), problems)


SCHEDULE_TEMPLATE = """\
Transform: AWS::Serverless-2016-10-31
Conditions:
  HasRefresh: !Equals [a, a]
Resources:
  Machine:
    Type: AWS::Serverless::StateMachine
    Properties:
      DefinitionUri: ../machines/deploy.asl.json
      Role: !GetAtt MachineRole.Arn
{machine_role}
  RefreshRole:
    Type: AWS::IAM::Role
    Condition: {role_condition}
    Properties:
      AssumeRolePolicyDocument:
        Statement:
          - Effect: Allow
            Principal:
              Service: {service}
            Action: sts:AssumeRole
      Policies:
        - PolicyName: p
          PolicyDocument:
            Statement:
              - Effect: Allow
                Action: states:StartExecution
                Resource: !Ref Machine
  Refresh:
    Type: AWS::Scheduler::Schedule
    Condition: HasRefresh
    Properties:
      ScheduleExpression: cron(0 3 * * ? *)
      FlexibleTimeWindow:
        Mode: "OFF"
      Target:
        Arn: {target}
        RoleArn: !GetAtt RefreshRole.Arn
        Input: {input}
"""


def schedule_template(
    input: str = """!Sub '{"namespace": "${Target}", "source_namespace": "${Source}"}'""",
    target: str = "!Ref Machine",
    service: str = "scheduler.amazonaws.com",
    role_condition: str = "HasRefresh",
) -> dict:
    return check.load_template(
        SCHEDULE_TEMPLATE.format(
            machine_role=MACHINE_ROLE.rstrip("\n"),
            input=input,
            target=target,
            service=service,
            role_condition=role_condition,
        )
    )


class Schedules(unittest.TestCase):
    def test_a_refresh_schedule_passes(self) -> None:
        template = schedule_template()
        self.assertEqual(check.check_schedules(template, Path("/nonexistent/infra")), [])
        self.assertEqual(check.check_roles(template), [])

    def test_misspelled_input_field_is_caught(self) -> None:
        template = schedule_template(
            """!Sub '{"namespace": "${Target}", "source_namspace": "${Source}"}'"""
        )
        problems = check.check_schedules(template, Path("."))
        self.assertTrue(
            any("'source_namspace' (did you mean 'source_namespace'?)" in p for p in problems),
            problems,
        )
        self.assertTrue(any("exactly one of" in p and "neither" in p for p in problems), problems)

    def test_both_sources_and_no_namespace_are_caught(self) -> None:
        template = schedule_template("""'{"source_namespace": "a", "snapshot_id": "b"}'""")
        problems = check.check_schedules(template, Path("."))
        self.assertTrue(any("has no 'namespace'" in p for p in problems), problems)
        self.assertTrue(any("exactly one of" in p for p in problems), problems)

    def test_input_that_is_not_json_is_caught(self) -> None:
        template = schedule_template("""!Sub '{"namespace": "${Target}",}'""")
        problems = check.check_schedules(template, Path("."))
        self.assertEqual(len(problems), 1, problems)
        self.assertIn("is not JSON", problems[0])

    def test_empty_field_is_caught(self) -> None:
        template = schedule_template("""'{"namespace": "xy-0146-qa", "snapshot_id": ""}'""")
        problems = check.check_schedules(template, Path("."))
        self.assertEqual(len(problems), 1, problems)
        self.assertIn("'snapshot_id' as ''", problems[0])

    def test_target_that_is_no_state_machine_is_caught(self) -> None:
        template = schedule_template(target="arn:aws:states:eu-west-1:123456789012:stateMachine:x")
        problems = check.check_schedules(template, Path("."))
        self.assertEqual(len(problems), 1, problems)
        self.assertIn("Target.Arn is not `!Ref <StateMachine>`", problems[0])

    def refresh_template(self, input: str) -> dict:
        text = SCHEDULE_TEMPLATE.replace("deploy.asl.json", "refresh.asl.json").format(
            machine_role=MACHINE_ROLE.rstrip("\n"),
            input=input,
            target="!Ref Machine",
            service="scheduler.amazonaws.com",
            role_condition="HasRefresh",
        )
        parameters = "Parameters:\n  Pairs:\n    Type: CommaDelimitedList\n    Default: \"\"\n"
        return check.load_template(parameters + text)

    def test_a_refresh_of_pairs_passes(self) -> None:
        template = self.refresh_template(
            """!Sub ['{"pairs": "${P}"}', {P: !Join [",", !Ref Pairs]}]"""
        )
        self.assertEqual(check.check_schedules(template, Path(".")), [])

    def test_a_refresh_given_a_deploy_request_is_caught(self) -> None:
        template = self.refresh_template("""'{"namespace": "xy-0146-qa", "source_namespace": "xy-0146-prod"}'""")
        problems = check.check_schedules(template, Path("."))
        self.assertEqual(len(problems), 1, problems)
        self.assertIn("takes only 'pairs'", problems[0])

    def test_a_malformed_pair_is_caught(self) -> None:
        template = self.refresh_template("""'{"pairs": "xy-0146-qa,xy-0146-prod"}'""")
        problems = check.check_schedules(template, Path("."))
        self.assertEqual(len(problems), 1, problems)
        self.assertIn("TARGET<SOURCE", problems[0])

    def sweep_template(self, input: str) -> dict:
        text = SCHEDULE_TEMPLATE.replace("deploy.asl.json", "sweep-orphans.asl.json").format(
            machine_role=MACHINE_ROLE.rstrip("\n"),
            input=input,
            target="!Ref Machine",
            service="scheduler.amazonaws.com",
            role_condition="HasRefresh",
        )
        parameters = (
            "Parameters:\n"
            "  Apply:\n    Type: String\n    Default: \"false\"\n"
            "    AllowedValues: [\"false\", \"true\"]\n"
            "  Days:\n    Type: Number\n    Default: 14\n"
        )
        return check.load_template(parameters + text)

    def test_a_sweep_schedule_with_parameters_passes(self) -> None:
        template = self.sweep_template(
            """!Sub '{"apply": ${Apply}, "snapshot_retention_days": ${Days}}'"""
        )
        self.assertEqual(check.check_schedules(template, Path(".")), [])

    def test_sweep_input_of_the_wrong_shape_is_caught(self) -> None:
        template = self.sweep_template(
            """'{"apply": "true", "min_age_hours": true, "dry_run": false}'"""
        )
        problems = check.check_schedules(template, Path("."))
        self.assertEqual(len(problems), 3, problems)
        self.assertTrue(any("'apply' as 'true', not a JSON boolean" in p for p in problems))
        self.assertTrue(any("'min_age_hours' as True, not a JSON integer" in p for p in problems))
        self.assertTrue(any("'dry_run', which the sweep" in p for p in problems))

    def test_schedule_role_trusting_another_service_is_caught(self) -> None:
        problems = check.check_roles(schedule_template(service="lambda.amazonaws.com"))
        self.assertEqual(len(problems), 1, problems)
        self.assertIn("Refresh needs exactly scheduler.amazonaws.com", problems[0])

    def test_role_without_its_users_condition_is_caught(self) -> None:
        text = SCHEDULE_TEMPLATE.replace("    Condition: {role_condition}\n", "", 1)
        template = check.load_template(
            text.format(
                machine_role=MACHINE_ROLE.rstrip("\n"),
                input="""'{"namespace": "a", "snapshot_id": "b"}'""",
                target="!Ref Machine",
                service="scheduler.amazonaws.com",
            )
        )
        problems = check.check_roles(template)
        self.assertEqual(len(problems), 1, problems)
        self.assertIn("RefreshRole: created under Condition None", problems[0])
        self.assertIn("Refresh under 'HasRefresh'", problems[0])


PIPELINE = """\
Resources:
  Pipeline:
    Type: AWS::CodePipeline::Pipeline
    Properties:
      RoleArn: !GetAtt PipelineRole.Arn
  PipelineRole:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Statement:
          - Effect: Allow
            Principal:
              Service: codepipeline.amazonaws.com
            Action: sts:AssumeRole
      Policies:
        - PolicyName: p
          PolicyDocument:
            Statement:
              - Effect: Allow
                Action: [{actions}]
                Resource: arn:aws:states:eu-west-1:123456789012:stateMachine:deploy
"""


class IamOnly(unittest.TestCase):
    def run_iam(self, text: str) -> list[str]:
        path = Path(tempfile.mkdtemp()) / "pipeline.yaml"
        path.write_text(text)
        try:
            return check.run_iam(path)
        finally:
            path.unlink()
            path.parent.rmdir()

    def test_real_actions_pass(self) -> None:
        text = PIPELINE.format(actions="states:StartExecution, s3:GetObjectVersion")
        self.assertEqual(self.run_iam(text), [])

    def test_misspelled_action_is_caught_without_a_known_list(self) -> None:
        problems = self.run_iam(PIPELINE.format(actions="states:StartExecutions"))
        self.assertTrue(
            any("no operation of states" in p and "states:StartExecution" in p for p in problems),
            problems,
        )

    def test_pipeline_role_trusting_another_service_is_caught(self) -> None:
        text = PIPELINE.format(actions="states:StartExecution").replace(
            "codepipeline.amazonaws.com", "events.amazonaws.com"
        )
        problems = self.run_iam(text)
        self.assertEqual(len(problems), 1, problems)
        self.assertIn("Pipeline needs exactly codepipeline.amazonaws.com", problems[0])


class ExecutionGrants(unittest.TestCase):
    """Who a state machine's role may start: its nested targets, and itself for Distributed."""

    def setUp(self) -> None:
        self.real = check.load_template(check.TEMPLATE.read_text())

    def problems(self, template: dict) -> list[str]:
        return check.check_execution_grants(template, check.INFRA)

    def fleet_statements(self, template: dict) -> list:
        role = template["Resources"]["FleetStateMachineRole"]
        return role["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]

    def test_the_fleet_may_start_the_deploy_machine_and_itself(self) -> None:
        self.assertEqual(self.problems(self.real), [])

    def test_another_machine_is_caught(self) -> None:
        template = copy.deepcopy(self.real)
        self.fleet_statements(template).append(
            {"Effect": "Allow", "Action": "states:StartExecution", "Resource": {"Ref": "SweepStateMachine"}}
        )
        problems = self.problems(template)
        self.assertEqual(len(problems), 1, problems)
        self.assertIn("a machine its definition does not start", problems[0])

    def test_itself_without_its_name_is_caught(self) -> None:
        template = copy.deepcopy(self.real)
        del template["Resources"]["FleetStateMachine"]["Properties"]["Name"]
        problems = self.problems(template)
        self.assertEqual(len(problems), 1, problems)
        self.assertIn("only for a Distributed Map and by the Name", problems[0])

    def test_a_machine_without_a_distributed_map_may_not_start_itself(self) -> None:
        template = copy.deepcopy(self.real)
        machine = template["Resources"]["DeployStateMachine"]["Properties"]
        machine["Name"] = {"Fn::Sub": "${AWS::StackName}-deploy"}
        role_id = check.getatt_target(machine["Role"])
        statements = template["Resources"][role_id]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
        statements.append(
            {
                "Effect": "Allow",
                "Action": "states:StartExecution",
                "Resource": {"Fn::Sub": "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:stateMachine:${AWS::StackName}-deploy"},
            }
        )
        problems = self.problems(template)
        self.assertEqual(len(problems), 1, problems)
        self.assertIn("itself", problems[0])


class Alerts(unittest.TestCase):
    """Who hears that an execution failed."""

    def setUp(self) -> None:
        self.real = check.load_template(check.TEMPLATE.read_text())

    def test_every_machine_is_covered(self) -> None:
        self.assertEqual(check.check_alerts(self.real), [])

    def test_a_machine_left_out_is_caught(self) -> None:
        template = copy.deepcopy(self.real)
        rule = template["Resources"]["ExecutionEndedBadlyRule"]["Properties"]
        rule["EventPattern"]["detail"]["stateMachineArn"] = [
            {"Ref": "DeployStateMachine"},
            {"Ref": "RefreshStateMachine"},
        ]
        problems = check.check_alerts(template)
        self.assertEqual(len(problems), 1, problems)
        self.assertIn("FleetStateMachine: no EventBridge rule", problems[0])

    def test_a_missing_ending_is_caught(self) -> None:
        template = copy.deepcopy(self.real)
        rule = template["Resources"]["SweepFailedRule"]["Properties"]
        rule["EventPattern"]["detail"]["status"] = ["FAILED"]
        problems = check.check_alerts(template)
        self.assertEqual(len(problems), 1, problems)
        self.assertIn("SweepStateMachine", problems[0])

    def test_rollback_incomplete_without_its_rule_is_caught(self) -> None:
        template = copy.deepcopy(self.real)
        del template["Resources"]["RollbackIncompleteRule"]
        policy = template["Resources"]["AlertTopicPolicy"]["Properties"]["PolicyDocument"]
        arns = policy["Statement"][0]["Condition"]["ArnEquals"]["aws:SourceArn"]
        policy["Statement"][0]["Condition"]["ArnEquals"]["aws:SourceArn"] = [
            a for a in arns if check.getatt_target(a) != "RollbackIncompleteRule"
        ]
        problems = check.check_alerts(template)
        self.assertEqual(len(problems), 1, problems)
        self.assertIn("RollbackIncomplete", problems[0])

    def test_a_rule_the_topic_refuses_is_caught(self) -> None:
        template = copy.deepcopy(self.real)
        policy = template["Resources"]["AlertTopicPolicy"]["Properties"]["PolicyDocument"]
        del policy["Statement"][0]["Condition"]["ArnEquals"]["aws:SourceArn"][0]
        problems = check.check_alerts(template)
        self.assertEqual(len(problems), 1, problems)
        self.assertIn("ExecutionEndedBadlyRule: AlertTopicPolicy does not let it publish", problems[0])

    def test_a_message_field_never_read_is_caught(self) -> None:
        template = copy.deepcopy(self.real)
        target = template["Resources"]["SweepFailedRule"]["Properties"]["Targets"][0]
        target["InputTransformer"]["InputTemplate"] += " <namespace>"
        problems = check.check_alerts(template)
        self.assertEqual(len(problems), 1, problems)
        self.assertIn("<namespace>", problems[0])


class NamespaceScope(unittest.TestCase):
    """One stack, several customers: what a function may change is chosen by the namespace tag."""

    ACCOUNT = "arn:aws:rds:eu-west-1:123456789012"
    TENANTS = "arn:aws:ecs:eu-west-1:123456789012:cluster/tenants"

    @classmethod
    def setUpClass(cls) -> None:
        cls.template = check.load_template(check.TEMPLATE.read_text())

    def parameters(self, patterns: list[str]) -> dict:
        return {
            "AWS::Partition": "aws",
            "AWS::Region": "eu-west-1",
            "AWS::AccountId": "123456789012",
            "NamespacePatterns": patterns,
            "EcsClusterArns": [self.TENANTS],
            "ParameterRoot": "/switchyard",
        }

    def allows(self, role: str, action: str, arn: str, patterns: list[str], **context: str) -> bool:
        keys = dict(context)
        return check.evaluate(self.template, role, action, arn, keys, self.parameters(patterns))

    def db(self, name: str) -> str:
        return f"{self.ACCOUNT}:db:{name}"

    def snapshot(self, name: str) -> str:
        return f"{self.ACCOUNT}:snapshot:{name}"

    TWO = ["xy-*", "ab-*"]

    def test_deletes_reach_both_customers_and_nobody_else(self) -> None:
        for role in ("CleanupRole", "RollbackRole", "DeleteOrphansRole"):
            for action in ("rds:DeleteDBInstance", "rds:ModifyDBInstance"):
                with self.subTest(role=role, action=action):
                    for ns in ("xy-0146-prod", "ab-0007-qa"):
                        self.assertTrue(self.allows(role, action, self.db(f"{ns}-20261130-150821"), self.TWO, **{"aws:ResourceTag/switchyard:namespace": ns}))
                    self.assertFalse(self.allows(role, action, self.db("zz-0001-prod-20261130-150821"), self.TWO, **{"aws:ResourceTag/switchyard:namespace": "zz-0001-prod"}))
                    # A database without the tag is nobody's, whatever its name.
                    self.assertFalse(self.allows(role, action, self.db("xy-0146-prod-20261130-150821"), self.TWO))
                    # One customer's stack does not reach the other's.
                    self.assertFalse(self.allows(role, action, self.db("ab-0007-qa-20261130-150821"), ["xy-*"], **{"aws:ResourceTag/switchyard:namespace": "ab-0007-qa"}))

    def test_a_restore_needs_switchyards_tags_for_a_served_namespace(self) -> None:
        tags = {"aws:RequestTag/switchyard:managed-by": "switchyard", "aws:RequestTag/switchyard:namespace": "ab-0007-qa"}
        new = self.db("ab-0007-qa-20261130-150821")
        action = "rds:RestoreDBInstanceFromDBSnapshot"
        self.assertTrue(self.allows("CreateDbRole", action, new, self.TWO, **tags))
        self.assertTrue(self.allows("CreateDbRole", "rds:AddTagsToResource", new, self.TWO, **tags))
        self.assertFalse(self.allows("CreateDbRole", action, new, self.TWO, **{"aws:RequestTag/switchyard:namespace": "ab-0007-qa"}))
        self.assertFalse(self.allows("CreateDbRole", action, new, self.TWO, **{**tags, "aws:RequestTag/switchyard:namespace": "zz-0001-qa"}))
        # The snapshot it reads may be an automated one, without Switchyard's tags.
        self.assertTrue(self.allows("CreateDbRole", action, self.snapshot("rds:ab-0007-prod-2026-11-30-03-10"), self.TWO))
        # The restore role deletes nothing.
        self.assertFalse(self.allows("CreateDbRole", "rds:DeleteDBInstance", new, self.TWO, **{"aws:ResourceTag/switchyard:namespace": "ab-0007-qa"}))

    def test_a_snapshot_is_taken_of_a_served_database_with_tags(self) -> None:
        action = "rds:CreateDBSnapshot"
        self.assertTrue(self.allows("SnapshotRole", action, self.db("xy-0146-dev-20261101-010101"), self.TWO, **{"aws:ResourceTag/switchyard:namespace": "xy-0146-dev"}))
        self.assertFalse(self.allows("SnapshotRole", action, self.db("billing-main"), self.TWO))
        tags = {"aws:RequestTag/switchyard:managed-by": "switchyard", "aws:RequestTag/switchyard:namespace": "xy-0146-dev"}
        self.assertTrue(self.allows("SnapshotRole", action, self.snapshot("xy-0146-dev-20261130-150821"), self.TWO, **tags))
        self.assertFalse(self.allows("SnapshotRole", action, self.snapshot("xy-0146-dev-20261130-150821"), self.TWO, **{**tags, "aws:RequestTag/switchyard:namespace": "zz-0001-dev"}))

    def test_the_sweep_deletes_snapshots_of_served_namespaces_only(self) -> None:
        action = "rds:DeleteDBSnapshot"
        self.assertTrue(self.allows("DeleteOrphansRole", action, self.snapshot("ab-0007-dev-20261001-010101"), self.TWO, **{"aws:ResourceTag/switchyard:namespace": "ab-0007-dev"}))
        self.assertFalse(self.allows("DeleteOrphansRole", action, self.snapshot("zz-0001-dev-20261001-010101"), self.TWO, **{"aws:ResourceTag/switchyard:namespace": "zz-0001-dev"}))
        self.assertFalse(self.allows("DeleteOrphansRole", action, self.snapshot("ab-0007-dev-20261001-010101"), self.TWO))

    def test_services_are_scoped_by_the_tenant_clusters(self) -> None:
        service = "arn:aws:ecs:eu-west-1:123456789012:service/tenants/ab-0007-qa-app"
        self.assertTrue(self.allows("DeployServiceRole", "ecs:UpdateService", service, self.TWO, **{"ecs:cluster": self.TENANTS}))
        other = "arn:aws:ecs:eu-west-1:123456789012:cluster/billing"
        self.assertFalse(self.allows("DeployServiceRole", "ecs:UpdateService", "arn:aws:ecs:eu-west-1:123456789012:service/billing/api", self.TWO, **{"ecs:cluster": other}))

    def test_an_unscoped_delete_is_caught(self) -> None:
        text = role(
            """
            - Effect: Allow
              Action: rds:DeleteDBInstance
              Resource: !Sub arn:${AWS::Partition}:rds:${AWS::Region}:${AWS::AccountId}:db:*
              Condition:
                "Null":
                  aws:ResourceTag/switchyard:namespace: "false"
            """
        )
        problems = problems_of(check.check_namespace_scope, text)
        self.assertEqual(len(problems), 1, problems)
        self.assertIn("NamespacePatterns", problems[0])

    def test_a_restore_source_needs_no_tag_but_its_instance_does(self) -> None:
        text = role(
            """
            - Effect: Allow
              Action: rds:RestoreDBInstanceFromDBSnapshot
              Resource:
                - !Sub arn:${AWS::Partition}:rds:${AWS::Region}:${AWS::AccountId}:snapshot:*
                - !Sub arn:${AWS::Partition}:rds:${AWS::Region}:${AWS::AccountId}:db:*
            """
        )
        problems = problems_of(check.check_namespace_scope, text)
        self.assertEqual(len(problems), 1, problems)
        self.assertIn(":db:*", problems[0])

    def test_reads_need_no_tag(self) -> None:
        text = role(
            """
            - Effect: Allow
              Action: rds:DescribeDBInstances
              Resource: !Sub arn:${AWS::Partition}:rds:${AWS::Region}:${AWS::AccountId}:db:*
            """
        )
        self.assertEqual(problems_of(check.check_namespace_scope, text), [])


class RealTemplate(unittest.TestCase):
    def test_the_template_passes_every_check(self) -> None:
        self.assertEqual(check.run_all(), [])

    def test_the_pipeline_example_passes_the_iam_checks(self) -> None:
        self.assertEqual(check.run_iam(check.INFRA / "examples" / "pipeline.yaml"), [])

    def test_the_promotion_chain_passes_the_iam_checks(self) -> None:
        self.assertEqual(check.run_iam(check.INFRA / "examples" / "promotion.yaml"), [])


if __name__ == "__main__":
    unittest.main()
