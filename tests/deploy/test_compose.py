"""docker-compose.yml cannot run here (no Docker engine): check it against the code instead."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml

from offramp import search_attributes
from offramp.config import DEFAULT_DEPLOYMENT_NAME, ENV_PREFIX, EngineSettings, load_settings
from offramp.devstack.binaries import PROJECT_ROOT
from offramp.devstack.chain import HOT_WALLET_KEY, LOCAL_CHAIN_ID, expected_token_address
from offramp.logs import LOG_FORMAT_VAR, LOG_LEVEL_VAR
from offramp.metrics import METRICS_ADDRESS_VAR
from offramp.observability.attention_gauge import GAUGE_INTERVAL_VAR
from offramp.observability.health import HEALTH_ADDRESS_VAR, HEALTH_PATH
from offramp.observability.tracing import TRACING_VAR
from offramp.webhooks.app import route_path
from offramp.webhooks.config import ENV_PREFIX as WEBHOOKS_PREFIX
from offramp.webhooks.config import WebhookSettings
from worker import roles, versioning

COMPOSE = PROJECT_ROOT / "docker-compose.yml"
SCRIPTS = PROJECT_ROOT / "deploy" / "compose"
# Temporal's own connection variables (temporalio.envconfig) the worker understands.
TEMPORAL_ENV = {
    "TEMPORAL_ADDRESS",
    "TEMPORAL_NAMESPACE",
    "TEMPORAL_API_KEY",
    "TEMPORAL_TLS",
    "TEMPORAL_TLS_CLIENT_CERT_PATH",
    "TEMPORAL_TLS_CLIENT_KEY_PATH",
    "TEMPORAL_TLS_SERVER_CA_CERT_PATH",
    "TEMPORAL_TLS_SERVER_NAME",
    "TEMPORAL_PROFILE",
    "TEMPORAL_CONFIG_FILE",
}
# Process settings read outside EngineSettings (logs, metrics, health, tracing).
PROCESS_ENV = {
    LOG_LEVEL_VAR,
    LOG_FORMAT_VAR,
    METRICS_ADDRESS_VAR,
    GAUGE_INTERVAL_VAR,
    HEALTH_ADDRESS_VAR,
    TRACING_VAR,
}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = compose["services"]
    return result


def published_port(service: dict[str, Any], container_port: int) -> bool:
    return any(str(p).split(":")[-1] == str(container_port) for p in service.get("ports", []))


def command_option(service: dict[str, Any], option: str) -> str:
    command = service["command"]
    return str(command[command.index(option) + 1])


def test_every_service_the_worker_needs_exists(compose: dict[str, Any]) -> None:
    svc = services(compose)
    for name in (
        "postgresql",
        "temporal-schema",
        "temporal",
        "temporal-namespace",
        "temporal-ui",
        "anvil",
        "chain-setup",
        "kado-simulator",
        "webhooks",
        "worker",
        "signer",
        "worker-version",
    ):
        assert name in svc, f"service {name} missing"
    assert svc["worker"]["deploy"]["replicas"] == 2
    # Every depends_on points at a defined service.
    for name, service in svc.items():
        for dep in service.get("depends_on", {}):
            assert dep in svc, f"{name} depends on undefined {dep}"


def test_images_are_pinned(compose: dict[str, Any]) -> None:
    for name, service in services(compose).items():
        image = service.get("image")
        assert image, f"{name} has no image"
        if "build" in service or image == "offramp-engine:local":
            continue
        tag = image.rsplit(":", 1)[-1] if ":" in image.split("/")[-1] else ""
        assert re.fullmatch(r"v?\d+(\.\d+)+", tag), f"{name}: image {image} is not pinned"


def test_long_running_services_have_healthchecks(compose: dict[str, Any]) -> None:
    one_shot = {"temporal-schema", "temporal-namespace", "chain-setup", "worker-version"}
    for name, service in services(compose).items():
        if name not in one_shot:
            assert "healthcheck" in service, f"{name} has no healthcheck"


ENGINE_SERVICES = ("worker", "signer", "worker-version")


def test_worker_environment_matches_the_configuration_model(compose: dict[str, Any]) -> None:
    settings_vars = {f"{ENV_PREFIX}{name.upper()}" for name in EngineSettings.model_fields}
    for service in ENGINE_SERVICES:
        env: dict[str, str] = services(compose)[service]["environment"]
        for name in env:
            known = settings_vars | TEMPORAL_ENV | PROCESS_ENV
            unknown = name not in known and not name.startswith("OTEL_")
            assert not unknown, f"{service} sets unknown variable {name}"
        # Each value parses as the worker reads it (${VAR:-default}: the default).
        load_settings(
            **{
                k.removeprefix(ENV_PREFIX).lower(): compose_default(v)
                for k, v in env.items()
                if k.startswith(ENV_PREFIX) and k != "OFFRAMP_CHAINS_FILE" and k not in PROCESS_ENV
            }
        )
    for service in ("worker", "signer"):
        env = services(compose)[service]["environment"]
        assert env["OFFRAMP_TASK_QUEUE"] == EngineSettings.model_fields["task_queue"].default


def compose_default(value: str) -> str:
    """`${VAR:-default}` as compose resolves it with VAR unset."""
    match = re.fullmatch(r"\$\{\w+:-(.*)\}", value)
    return match.group(1) if match else value


def test_the_key_is_on_the_signer_alone(compose: dict[str, Any]) -> None:
    svc = services(compose)
    key_vars = {
        "OFFRAMP_HOT_WALLET_PRIVATE_KEY",
        "OFFRAMP_HOT_WALLET_PRIVATE_KEYS",
        "OFFRAMP_HOT_WALLET_KEYSTORE_FILE",
        "OFFRAMP_HOT_WALLET_KEYSTORE_FILES",
    }
    holders = {
        name for name, service in svc.items() if key_vars & set(service.get("environment", {}))
    }
    assert holders == {"signer"}
    assert svc["signer"]["environment"]["OFFRAMP_WORKER_ROLE"] == roles.SIGNER
    assert svc["worker"]["environment"]["OFFRAMP_WORKER_ROLE"] == roles.KEYLESS
    # Together they serve both queues: the keyless replicas the main one, the signer its own.
    assert roles.polls_main_queue(roles.KEYLESS) and not roles.polls_signer_queue(roles.KEYLESS)
    assert roles.polls_signer_queue(roles.SIGNER) and not roles.polls_main_queue(roles.SIGNER)


def test_every_engine_service_runs_one_versioned_build(compose: dict[str, Any]) -> None:
    builds = set()
    for service in ENGINE_SERVICES:
        env = services(compose)[service]["environment"]
        assert env["OFFRAMP_WORKER_VERSIONING"] == "true", service
        builds.add((env["OFFRAMP_DEPLOYMENT_NAME"], env.get("OFFRAMP_BUILD_ID")))
    # One build; unset, so each worker of the one image derives the same id from its code.
    assert builds == {(DEFAULT_DEPLOYMENT_NAME, None)}
    version = versioning.build_id(load_settings())
    assert version.startswith(metadata.version(versioning.PACKAGE) + "-")
    assert version.removeprefix(metadata.version(versioning.PACKAGE) + "-") == (
        versioning.code_digest()
    )
    assert services(compose)["worker-version"]["command"] == [
        "python",
        "-m",
        "worker.set_current",
    ]
    assert (PROJECT_ROOT / "worker" / "set_current.py").exists()


def test_worker_addresses_point_at_services_and_ports(compose: dict[str, Any]) -> None:
    svc = services(compose)
    env = svc["worker"]["environment"]
    host, port = env["TEMPORAL_ADDRESS"].split(":")
    assert host in svc and published_port(svc[host], int(port))
    kado = urlparse(env["OFFRAMP_KADO_BASE_URL"])
    assert kado.hostname == "kado-simulator"
    assert command_option(svc["kado-simulator"], "--port") == str(kado.port)
    # The chains file the worker reads is the one chain-setup writes, on a shared volume.
    chains_file = env["OFFRAMP_CHAINS_FILE"]
    assert command_option(svc["chain-setup"], "--chains-file") == chains_file
    volume = chains_file.split("/")[1]
    for name in ("chain-setup", "worker"):
        assert any(str(v).split(":")[1] == f"/{volume}" for v in svc[name]["volumes"])


def test_webhooks_receiver_gets_the_simulators_signed_webhooks(compose: dict[str, Any]) -> None:
    svc = services(compose)
    hooks, sim = svc["webhooks"], svc["kado-simulator"]
    env: dict[str, str] = hooks["environment"]
    known = {f"{WEBHOOKS_PREFIX}{name.upper()}" for name in WebhookSettings.model_fields}
    for name in env:
        assert name in known | TEMPORAL_ENV, f"webhooks sets unknown variable {name}"
    assert env["TEMPORAL_ADDRESS"] == svc["worker"]["environment"]["TEMPORAL_ADDRESS"]
    assert env["OFFRAMP_WEBHOOKS_HOST"] == "0.0.0.0"
    port = env["OFFRAMP_WEBHOOKS_PORT"]
    assert published_port(hooks, int(port))
    assert f"localhost:{port}/health" in " ".join(hooks["healthcheck"]["test"])
    url = urlparse(command_option(sim, "--webhook-url"))
    assert (url.hostname, str(url.port), url.path) == ("webhooks", port, route_path("kado"))
    # One secret, mounted in both, read from the same file: never in an environment value.
    secret_file = env["OFFRAMP_WEBHOOKS_KADO_SECRET_FILE"]
    assert command_option(sim, "--webhook-secret-file") == secret_file
    name = Path(secret_file).name
    assert name in hooks["secrets"] and name in sim["secrets"]
    assert (PROJECT_ROOT / compose["secrets"][name]["file"]).is_file()
    assert "OFFRAMP_WEBHOOKS_KADO_SECRET" not in env
    assert sim["depends_on"]["webhooks"]["condition"] == "service_healthy"


def test_chain_matches_the_local_chain(compose: dict[str, Any]) -> None:
    svc = services(compose)
    anvil = svc["anvil"]
    assert command_option(anvil, "--chain-id") == str(LOCAL_CHAIN_ID)
    rpc = urlparse(command_option(svc["chain-setup"], "--rpc-url"))
    assert rpc.hostname == "anvil" and command_option(anvil, "--port") == str(rpc.port)
    assert command_option(svc["kado-simulator"], "--rpc-url") == rpc.geturl()
    sim_token = command_option(svc["kado-simulator"], "--token-address")
    assert sim_token == expected_token_address()


def test_only_the_published_development_key_is_in_the_file() -> None:
    keys = set(re.findall(r"0x[0-9a-fA-F]{64}", COMPOSE.read_text()))
    assert keys <= {HOT_WALLET_KEY}


def test_search_attributes_created_match_the_code() -> None:
    script = (SCRIPTS / "create-namespace.sh").read_text()
    block = script[script.index("for attr in") : script.index("\ndo\n")]
    created = re.findall(r"(\w+=\w+)", block)
    assert created == search_attributes.cli_definitions()


def test_scripts_and_dockerfile_exist(compose: dict[str, Any]) -> None:
    for name in ("temporal-schema", "temporal-namespace"):
        script = services(compose)[name]["command"][-1]
        assert (SCRIPTS / Path(script).name).exists()
    dockerfile = (PROJECT_ROOT / "Dockerfile").read_text()
    assert 'CMD ["python", "-m", "worker"]' in dockerfile
    assert "constraints.txt" in dockerfile


def _answering(status: int) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status if self.path == HEALTH_PATH else 404)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_worker_healthcheck_asks_the_health_endpoint(compose: dict[str, Any]) -> None:
    """The healthcheck's own command, pointed at a stand-in endpoint: healthy on 200, unhealthy
    on the 503 the worker answers when it cannot reach Temporal or does not poll."""
    worker = services(compose)["worker"]
    health_port = worker["environment"]["OFFRAMP_HEALTH_ADDRESS"].rsplit(":", 1)[1]
    assert str(health_port) in [str(p) for p in worker["expose"]]
    test = worker["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"]
    url = f"http://127.0.0.1:{health_port}{HEALTH_PATH}"
    assert url in test[3]
    for status, healthy in ((200, True), (503, False)):
        server = _answering(status)
        try:
            here = f"http://127.0.0.1:{server.server_address[1]}{HEALTH_PATH}"
            done = subprocess.run(
                [sys.executable, "-c", test[3].replace(url, here)],
                capture_output=True,
                timeout=30,
                check=False,
            )
        finally:
            server.shutdown()
            server.server_close()
        assert (done.returncode == 0) is healthy, (status, done.stderr)
