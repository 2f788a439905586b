"""The Kubernetes manifests: every overlay renders, validates offline and is hardened.

Needs `kubectl` (with its built-in kustomize) on PATH and the `kubernetes-validate`
package (dev extra), which ships the Kubernetes JSON schemas: no cluster, no network.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
OVERLAYS = sorted(p.name for p in (K8S / "overlays").iterdir() if p.is_dir())
# The oldest Kubernetes minor we support, and the newest the schemas know.
KUBE_VERSIONS = ("1.29", "latest")
API_PORT = 3210
SITE_PORT = 3211
SECRET_NAME = "convect-secrets"

Obj = dict[str, Any]


def kubectl() -> str:
    """The kubectl binary; a missing one is a failure (CI installs it), never a skip."""
    path = shutil.which("kubectl")
    if path is None:
        pytest.fail(
            "kubectl is not on PATH: it is needed to render k8s/ with `kubectl kustomize` "
            "(install kubectl >= 1.27, which bundles kustomize)",
            pytrace=False,
        )
    return path


@functools.cache
def _render(overlay: str) -> tuple[Obj, ...]:
    proc = subprocess.run(
        [kubectl(), "kustomize", str(K8S / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, f"kubectl kustomize {overlay} failed:\n{proc.stderr}"
    return tuple(doc for doc in yaml.safe_load_all(proc.stdout) if doc)


def render(overlay: str) -> list[Obj]:
    return list(_render(overlay))


def by_kind(objs: list[Obj], kind: str) -> list[Obj]:
    return [o for o in objs if o["kind"] == kind]


def ident(obj: Obj) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


def one(objs: list[Obj], kind: str, name: str) -> Obj:
    found = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def config_map(objs: list[Obj]) -> Obj:
    """The app's ConfigMap (its name carries kustomize's content hash)."""
    found = [
        o for o in by_kind(objs, "ConfigMap") if o["metadata"]["name"].startswith("convect-config")
    ]
    assert len(found) == 1, f"expected one convect-config ConfigMap, found {len(found)}"
    return found[0]


def pod_labels(obj: Obj) -> dict[str, str]:
    return obj["spec"]["template"]["metadata"]["labels"]


def pod_spec(obj: Obj) -> Obj | None:
    kind = obj["kind"]
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
        return obj["spec"]["template"]["spec"]
    if kind == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    if kind == "Pod":
        return obj["spec"]
    return None


def workloads(objs: list[Obj]) -> list[tuple[Obj, Obj]]:
    return [(o, spec) for o in objs if (spec := pod_spec(o)) is not None]


def containers(spec: Obj) -> list[Obj]:
    return [*spec.get("initContainers", []), *spec["containers"]]


def container_port(container: Obj, port: int | str) -> int:
    """Resolve a probe's port (number or container port name) to a number."""
    if isinstance(port, int):
        return port
    for p in container.get("ports", []):
        if p.get("name") == port:
            return int(p["containerPort"])
    raise AssertionError(f"container {container['name']} has no port named {port!r}")


def command_line(container: Obj) -> list[str]:
    return [*container.get("command", []), *container.get("args", [])]


def selector_matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def all_objects() -> list[tuple[str, Obj]]:
    return [(overlay, obj) for overlay in OVERLAYS for obj in render(overlay)]


# ----------------------------------------------------------------------------------


def test_there_are_dev_and_prod_overlays_on_one_base() -> None:
    assert {"dev", "prod"} <= set(OVERLAYS)
    assert (K8S / "base" / "kustomization.yaml").is_file()
    for overlay in OVERLAYS:
        kustomization = yaml.safe_load(
            (K8S / "overlays" / overlay / "kustomization.yaml").read_text()
        )
        assert "../../base" in kustomization["resources"], overlay


def test_kubectl_is_available_to_render_the_manifests() -> None:
    assert Path(kubectl()).exists()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_overlay_renders_with_kubectl_kustomize(overlay: str) -> None:
    objs = render(overlay)
    kinds = {o["kind"] for o in objs}
    for kind in (
        "Deployment",
        "Job",
        "Service",
        "Ingress",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "ConfigMap",
    ):
        assert kind in kinds, f"{overlay} renders no {kind}"
    one(objs, "Deployment", "convect-api")
    one(objs, "Deployment", "convect-worker")
    one(objs, "Job", "convect-migrate")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_rendered_object_validates_against_the_kubernetes_schemas(overlay: str) -> None:
    try:
        import kubernetes_validate
    except ImportError:  # pragma: no cover - a missing dev extra is a failure
        pytest.fail("kubernetes-validate is not installed (pip install -e '.[dev]')", pytrace=False)
    versions = [
        kubernetes_validate.utils.latest_version() if v == "latest" else v for v in KUBE_VERSIONS
    ]
    errors = []
    for obj in render(overlay):
        for version in versions:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as e:
                path = ".".join(str(p) for p in e.path)
                errors.append(f"{ident(obj)} @ {version}: {path}: {e.message}")
            except kubernetes_validate.SchemaNotFoundError as e:
                errors.append(f"{ident(obj)} @ {version}: {e.message}")
    assert not errors, "\n".join(errors)


def test_every_object_has_a_namespace_from_its_overlay() -> None:
    for overlay, obj in all_objects():
        assert obj["metadata"].get("namespace"), f"{overlay}: {ident(obj)}"


def test_every_container_is_non_root_read_only_unprivileged_and_drops_all_capabilities() -> None:
    for overlay, obj in all_objects():
        for spec in filter(None, [pod_spec(obj)]):
            where = f"{overlay}: {ident(obj)}"
            pod_sc = spec.get("securityContext", {})
            assert pod_sc.get("runAsNonRoot") is True, where
            assert pod_sc.get("seccompProfile", {}).get("type") == "RuntimeDefault", where
            assert spec.get("automountServiceAccountToken") is False, where
            assert not spec.get("hostNetwork") and not spec.get("hostPID"), where
            for c in containers(spec):
                sc = c.get("securityContext", {})
                cw = f"{where} container {c['name']}"
                assert sc.get("runAsNonRoot") is True, cw
                assert sc.get("readOnlyRootFilesystem") is True, cw
                assert sc.get("allowPrivilegeEscalation") is False, cw
                assert sc.get("privileged", False) is False, cw
                assert sc.get("capabilities", {}).get("drop") == ["ALL"], cw
                assert not sc.get("capabilities", {}).get("add"), cw
                assert sc.get("seccompProfile", {}).get("type") == "RuntimeDefault", cw
                uid = sc.get("runAsUser", pod_sc.get("runAsUser"))
                assert isinstance(uid, int) and uid > 0, f"{cw}: numeric non-zero runAsUser"


def test_every_container_has_cpu_and_memory_requests_and_limits() -> None:
    for overlay, obj in all_objects():
        for spec in filter(None, [pod_spec(obj)]):
            for c in containers(spec):
                res = c.get("resources", {})
                cw = f"{overlay}: {ident(obj)} container {c['name']}"
                for section in ("requests", "limits"):
                    for resource in ("cpu", "memory"):
                        assert res.get(section, {}).get(resource), f"{cw}: {section}.{resource}"


def test_convect_containers_get_writable_scratch_space_despite_the_read_only_root() -> None:
    for overlay in OVERLAYS:
        objs = render(overlay)
        for name in ("convect-api", "convect-worker", "convect-migrate"):
            kind = "Job" if name == "convect-migrate" else "Deployment"
            spec = pod_spec(one(objs, kind, name))
            assert spec is not None
            c = spec["containers"][0]
            mounts = {m["mountPath"] for m in c.get("volumeMounts", [])}
            assert "/tmp" in mounts, f"{overlay} {name}"
            env = {e["name"]: e.get("value") for e in c.get("env", [])}
            data_dir = env.get("CONVECT_DATA_DIR")
            if data_dir is None:
                data_dir = config_map(objs)["data"]["CONVECT_DATA_DIR"]
            assert data_dir in mounts, (
                f"{overlay} {name}: CONVECT_DATA_DIR {data_dir} is not a volume"
            )
            emptydirs = {v["name"] for v in spec["volumes"] if "emptyDir" in v}
            assert {m["name"] for m in c["volumeMounts"]} <= emptydirs, f"{overlay} {name}"


def test_the_api_serves_both_ports_with_readyz_readiness_and_healthz_liveness_on_3210() -> None:
    for overlay in OVERLAYS:
        spec = pod_spec(one(render(overlay), "Deployment", "convect-api"))
        assert spec is not None
        (api,) = spec["containers"]
        assert command_line(api) == ["convect", "serve"], overlay
        ports = {p["containerPort"] for p in api["ports"]}
        assert {API_PORT, SITE_PORT} <= ports, overlay
        for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
            http = api[probe]["httpGet"]
            assert http["path"] == path, f"{overlay} {probe}"
            assert container_port(api, http["port"]) == API_PORT, f"{overlay} {probe}"


def test_the_api_drains_gracefully_on_termination() -> None:
    for overlay in OVERLAYS:
        dep = one(render(overlay), "Deployment", "convect-api")
        spec = dep["spec"]["template"]["spec"]
        (api,) = spec["containers"]
        pre_stop = api["lifecycle"]["preStop"]["exec"]["command"]
        assert pre_stop[0] == "sleep" and 0 < int(pre_stop[1]) < 15, overlay
        grace = spec["terminationGracePeriodSeconds"]
        assert int(pre_stop[1]) + 15 <= grace <= 120, overlay
        assert dep["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0, overlay


def test_the_worker_runs_arq_with_an_exec_liveness_probe_on_its_health_check() -> None:
    for overlay in OVERLAYS:
        spec = pod_spec(one(render(overlay), "Deployment", "convect-worker"))
        assert spec is not None
        (worker,) = spec["containers"]
        assert command_line(worker) == ["convect", "worker"], overlay
        assert worker["livenessProbe"]["exec"]["command"] == ["convect", "worker", "--check"], (
            overlay
        )
        assert not worker.get("ports"), f"{overlay}: the worker listens on nothing"


def test_the_migration_job_runs_convect_deploy_before_the_rollout() -> None:
    for overlay in OVERLAYS:
        job = one(render(overlay), "Job", "convect-migrate")
        spec = job["spec"]["template"]["spec"]
        (migrate,) = spec["containers"]
        assert command_line(migrate) == ["convect", "deploy"], overlay
        assert spec["restartPolicy"] == "Never", overlay
        assert job["spec"]["backoffLimit"] >= 1, overlay
        # k8s/deploy.sh applies this phase first and waits for the Job.
        assert job["metadata"]["labels"]["convect.dev/phase"] == "migrate", overlay
        refs = [e["secretRef"]["name"] for e in migrate.get("envFrom", []) if "secretRef" in e]
        assert refs == [SECRET_NAME], overlay
        # As an Argo CD PreSync hook it cannot rely on the release's ConfigMap.
        assert not [e for e in migrate.get("envFrom", []) if "configMapRef" in e], overlay
    prod_job = one(render("prod"), "Job", "convect-migrate")
    assert prod_job["metadata"]["annotations"]["argocd.argoproj.io/hook"] == "PreSync"
    script = (K8S / "deploy.sh").read_text()
    assert "-l convect.dev/phase=migrate" in script
    assert script.index("phase=migrate") < script.index("rollout status")


def test_deploy_script_is_valid_bash() -> None:
    bash = shutil.which("bash")
    assert bash is not None
    proc = subprocess.run(
        [bash, "-n", str(K8S / "deploy.sh")], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr


def test_no_secret_is_rendered_and_the_app_references_its_secret() -> None:
    for overlay in OVERLAYS:
        objs = render(overlay)
        for secret in by_kind(objs, "Secret"):
            assert not secret.get("data") and not secret.get("stringData"), (
                f"{overlay}: {ident(secret)} carries data; secrets are "
                "created out of band (docs/operations.md), never committed"
            )
        for name in ("convect-api", "convect-worker"):
            spec = pod_spec(one(objs, "Deployment", name))
            assert spec is not None
            env_from = spec["containers"][0]["envFrom"]
            assert {"secretRef": {"name": SECRET_NAME}} in env_from, f"{overlay} {name}"
            cm_refs = [e["configMapRef"]["name"] for e in env_from if "configMapRef" in e]
            assert cm_refs and all(r.startswith("convect-config") for r in cm_refs)
            assert cm_refs[0] in {o["metadata"]["name"] for o in by_kind(objs, "ConfigMap")}


def test_no_literal_credentials_appear_in_the_manifests() -> None:
    pattern = re.compile(r"(postgres(ql)?|rediss?)://[^\s:/@]*:[^\s@]+@", re.IGNORECASE)
    for overlay, obj in all_objects():
        text = yaml.safe_dump(obj)
        assert not pattern.search(text), f"{overlay}: {ident(obj)}"
        for _, spec in workloads([obj]):
            for c in containers(spec):
                for e in c.get("env", []):
                    if re.search(r"PASSWORD|SECRET|KEY|TOKEN|DATABASE_URL|REDIS_URL", e["name"]):
                        assert "valueFrom" in e, f"{overlay} {c['name']} env {e['name']}"


def test_the_configmap_holds_the_production_settings() -> None:
    for overlay in OVERLAYS:
        data = config_map(render(overlay))["data"]
        assert data["CONVECT_HOST"] == "0.0.0.0"
        assert data["CONVECT_PORT"] == str(API_PORT)
        assert data["CONVECT_SITE_PORT"] == str(SITE_PORT)
        assert data["CONVECT_MODE"] in ("prod", "dev")
        assert data["CONVECT_RUN_ACTIONS"] == "worker"  # API pods only route actions
        assert data["CONVECT_PUBLIC_URL"].startswith(("http://", "https://"))
        assert not {"CONVECT_ADMIN_KEY", "DATABASE_URL", "REDIS_URL"} & set(data), overlay
    assert config_map(render("prod"))["data"]["CONVECT_MODE"] == "prod"


def test_the_service_selects_the_api_pods_on_both_ports() -> None:
    for overlay in OVERLAYS:
        objs = render(overlay)
        svc = one(objs, "Service", "convect")
        api = one(objs, "Deployment", "convect-api")
        assert selector_matches(svc["spec"]["selector"], pod_labels(api))
        worker = one(objs, "Deployment", "convect-worker")
        assert not selector_matches(svc["spec"]["selector"], pod_labels(worker))
        (container,) = api["spec"]["template"]["spec"]["containers"]
        ports = {
            p["port"]: container_port(container, p["targetPort"]) for p in svc["spec"]["ports"]
        }
        assert ports == {API_PORT: API_PORT, SITE_PORT: SITE_PORT}, overlay


def test_the_ingress_supports_websockets_with_long_proxy_timeouts() -> None:
    for overlay in OVERLAYS:
        objs = render(overlay)
        ing = one(objs, "Ingress", "convect")
        ann = ing["metadata"]["annotations"]
        for key in ("proxy-read-timeout", "proxy-send-timeout"):
            value = ann.get(f"nginx.ingress.kubernetes.io/{key}")
            assert value is not None and int(value) >= 3600, f"{overlay}: {key}={value}"
        assert ing["spec"]["ingressClassName"] == "nginx"
        backends = {}
        for rule in ing["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                svc = path["backend"]["service"]
                assert svc["name"] == "convect"
                backends[(rule["host"], path["path"])] = svc["port"]
        svc_ports = {p["name"]: p["port"] for p in one(objs, "Service", "convect")["spec"]["ports"]}
        resolved = {k: svc_ports.get(v.get("name"), v.get("number")) for k, v in backends.items()}
        api_paths = [path for (_, path), port in resolved.items() if port == API_PORT]
        assert "/api" in api_paths, f"{overlay}: the Convex API and /api/.../sync are routed"
        assert SITE_PORT in resolved.values(), f"{overlay}: the HTTP actions host is routed"
        assert not {"/", "/metrics", "/healthz", "/readyz"} & set(api_paths), (
            f"{overlay}: internal endpoints must not be exposed"
        )


def test_autoscalers_and_disruption_budgets_target_the_deployments() -> None:
    for overlay in OVERLAYS:
        objs = render(overlay)
        deployments = {d["metadata"]["name"]: d for d in by_kind(objs, "Deployment")}
        targets = {
            h["spec"]["scaleTargetRef"]["name"] for h in by_kind(objs, "HorizontalPodAutoscaler")
        }
        assert {"convect-api", "convect-worker"} <= targets, overlay
        for hpa in by_kind(objs, "HorizontalPodAutoscaler"):
            assert hpa["spec"]["scaleTargetRef"]["name"] in deployments
            assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
            assert "replicas" not in deployments[hpa["spec"]["scaleTargetRef"]["name"]]["spec"], (
                f"{overlay}: an HPA-managed Deployment must not pin replicas"
            )
        covered = set()
        for pdb in by_kind(objs, "PodDisruptionBudget"):
            for name, dep in deployments.items():
                if selector_matches(pdb["spec"]["selector"]["matchLabels"], pod_labels(dep)):
                    covered.add(name)
        assert {"convect-api", "convect-worker"} <= covered, overlay
    prod = render("prod")
    api_hpa = one(prod, "HorizontalPodAutoscaler", "convect-api")
    assert api_hpa["spec"]["minReplicas"] >= 2


def test_network_policies_deny_by_default_and_admit_the_ingress_controller() -> None:
    for overlay in OVERLAYS:
        policies = {p["metadata"]["name"]: p for p in by_kind(render(overlay), "NetworkPolicy")}
        deny = policies["convect-default-deny"]["spec"]
        assert set(deny["policyTypes"]) == {"Ingress", "Egress"}
        assert "ingress" not in deny and "egress" not in deny
        api = policies["convect-api-ingress"]["spec"]
        ports = {p["port"] for rule in api["ingress"] for p in rule["ports"]}
        assert {API_PORT, SITE_PORT} <= ports
        egress = policies["convect-egress"]["spec"]["egress"]
        egress_ports = {p["port"] for rule in egress for p in rule["ports"]}
        assert {53, 5432, 6379} <= egress_ports


def test_prod_uses_external_services_and_dev_runs_them_in_cluster() -> None:
    prod = render("prod")
    assert not by_kind(prod, "StatefulSet"), "prod points at an external PostgreSQL"
    images = {c["image"] for _, spec in workloads(prod) for c in containers(spec)}
    assert all(i.startswith("registry.example.com/convect:") for i in images), images
    ing = one(prod, "Ingress", "convect")
    assert ing["spec"]["tls"][0]["secretName"]
    dev = render("dev")
    pg = one(dev, "StatefulSet", "convect-postgres")
    assert "pgvector" in pg["spec"]["template"]["spec"]["containers"][0]["image"]
    one(dev, "Deployment", "convect-redis")


def test_the_dockerfile_is_multi_stage_non_root_and_ships_the_functions() -> None:
    text = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM\s+\S+(?:\s+AS\s+(\S+))?", text, re.MULTILINE | re.IGNORECASE)
    assert len(stages) >= 2, "multi-stage"
    final = text[text.rindex("\nFROM ") :]
    assert "build-essential" not in final, "no build tools at run time"
    assert "apt-get install" not in final, "no build tools at run time"
    users = re.findall(r"^USER\s+(\S+)", final, re.MULTILINE)
    assert users and users[-1].split(":")[0] not in ("root", "0"), "runs as a non-root user"
    assert users[-1].split(":")[0].isdigit(), "numeric USER so runAsNonRoot can be verified"
    assert "--require-hashes" in text, "pinned dependencies"
    assert re.search(r"^COPY .*functions", text, re.MULTILINE), "the functions folder is copied in"
    assert "CONVECT_HOST=0.0.0.0" in final
    assert re.search(r'^ENTRYPOINT \["convect"\]', final, re.MULTILINE)


def test_the_docker_build_context_excludes_local_state() -> None:
    text = (ROOT / ".dockerignore").read_text()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    assert lines[0] == "*", "allow-list: everything is excluded first"
    included = {ln[1:].rstrip("/") for ln in lines if ln.startswith("!")}
    assert {"app", "functions", "migrations", "pyproject.toml", "alembic.ini"} <= included
    assert not included & {".venv", ".convect", ".git", "tests", "bench"}
    assert "**/.convect" in lines and "**/__pycache__" in lines
