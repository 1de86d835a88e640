"""AWS for the lab: moto server with pending states, AWS's copy limits, a
request log and a state that survives restarts (lab/aws/motolab.py).

It runs from its own virtualenv (.lab/aws-venv, lab/requirements-aws.txt), so
that moto's pins never meet the OpenStack services'. Clients find it through
.lab/aws.env (endpoint and the lab's dummy keys).
"""

from __future__ import annotations

from pathlib import Path

from .base import HOST, Service, write_private

HERE = Path(__file__).resolve().parent
SERVER = HERE.parent / "aws" / "motolab.py"
REQUIREMENTS = HERE.parent / "requirements-aws.txt"
# moto accepts any key; these are not secrets, only what boto3 needs to sign.
ACCESS_KEY = "AKIACLOUDSHIFTLAB000"
SECRET_KEY = "cloudshift-lab-not-a-secret"


class Moto(Service):
    kind = "moto"
    tier = 0
    health_path = "/cloudshift-lab/config"

    @property
    def venv(self) -> Path:
        return self.lab.state / "aws-venv"

    @property
    def env_path(self) -> Path:
        return self.lab.state / "aws.env"

    def environment(self) -> dict[str, str]:
        env = super().environment()
        env["PATH"] = f"{self.venv / 'bin'}:{env['PATH']}"
        env["MOTO_EC2_LOAD_DEFAULT_AMIS"] = "false"
        return env

    def command(self) -> list[str]:
        return [str(self.venv / "bin" / "python"), str(SERVER), "--host", HOST,
                "--port", str(self.port), "--state-dir", str(self.data_dir)]

    def client_environment(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def ready_hook(self) -> None:
        write_private(self.env_path, "".join(f"{key}={value}\n"
                                             for key, value in self.client_environment().items()))
