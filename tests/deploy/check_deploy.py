#!/usr/bin/python3
"""What can be checked of docker/ and deploy/ without a Docker engine or a cluster.

Usage: check_deploy.py REPO_ROOT PTQ_SERVER PTQ_CLIENT

- yamllint --strict on every YAML file under deploy/;
- `kubectl kustomize` renders both layouts, deploy/k8s and deploy/k8s/scaled (kubectl comes
  with deploy/install-deps.sh, so a missing kubectl is a problem, not a skip);
- the manifests: gRPC readiness/liveness probes on the served port, metrics served and annotated
  for scraping, non-root, datasets mounted
  read-only, state on a claim, GPU requests for the GPU pool, a termination grace period
  longer than the server's drain, and only environment variables ptq-server knows; in the
  scaled layout also: two api replicas behind the ptq-server Service, GPU and CPU workers,
  every server on a postgresql:// store with the state directory on one ReadWriteMany claim,
  and a PodDisruptionBudget for each Deployment;
- deploy/compose.yaml likewise;
- docker/Dockerfile: the build stage runs the install script, the runtime stage installs
  docker/runtime-packages.txt, copies both binaries and the bundled models, runs as a non-root
  user with a health check;
- docker/runtime-packages.txt against the binaries' NEEDED shared libraries: every library's
  package is listed, and every listed package provides one (or says why it is there).
Exits 1 with every problem listed.
"""
import os
import re
import shutil
import subprocess
import sys

import yaml

problems = []


def check(condition, message):
    if not condition:
        problems.append(message)


def server_env_vars(server):
    help_text = subprocess.run([server, "--help"], capture_output=True, text=True).stdout
    return set(re.findall(r"\bPTQ_[A-Z_]+\b", help_text))


def check_yaml(root):
    result = subprocess.run(["yamllint", "--strict", "-c", os.path.join(root, ".yamllint"),
                             os.path.join(root, "deploy")], capture_output=True, text=True)
    check(result.returncode == 0, "yamllint:\n" + result.stdout + result.stderr)
    if shutil.which("kubectl") is None:
        problems.append("kubectl is not installed (deploy/install-deps.sh installs kubernetes-client): "
                        "deploy/k8s cannot be rendered")
        return
    for layout in ("k8s", "k8s/scaled"):
        check(render(root, layout) is not None, f"kubectl kustomize deploy/{layout} fails")


def render(root, layout):
    """The documents `kubectl kustomize deploy/LAYOUT` renders, or None when it fails."""
    result = subprocess.run(["kubectl", "kustomize", os.path.join(root, "deploy", layout)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        problems.append(f"kubectl kustomize deploy/{layout}: {result.stderr}")
        return None
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def grace_seconds(env):
    return int(env.get("PTQ_SHUTDOWN_GRACE_SECONDS", "30"))


def says_transport(env):
    """ptq-server starts only with TLS files or --insecure: a deployment must say which."""
    return ("PTQ_TLS_CERT" in env and "PTQ_TLS_KEY" in env) or str(env.get("PTQ_INSECURE", "")).lower() == "true"


def check_server_workload(document, known_env, path, services, claims):
    """A StatefulSet or Deployment of ptq-server pods; `claims` names the claims it may keep
    state on."""
    spec = document["spec"]["template"]["spec"]
    name = document["metadata"]["name"]
    check(spec.get("securityContext", {}).get("runAsNonRoot") is True, f"{path}: {name} must run as non-root")
    # Pod Security "restricted": RuntimeDefault seccomp, no privilege escalation, no capabilities.
    check(spec.get("securityContext", {}).get("seccompProfile", {}).get("type") == "RuntimeDefault",
          f"{path}: {name} needs seccompProfile RuntimeDefault")
    for container in spec["containers"]:
        context = container.get("securityContext", {})
        check(context.get("allowPrivilegeEscalation") is False and context.get("capabilities", {}).get("drop") == ["ALL"],
              f"{path}: {name}: {container['name']} must forbid privilege escalation and drop ALL capabilities")
    labels = document["spec"]["template"]["metadata"]["labels"]
    if document["kind"] == "StatefulSet":
        # The governing Service: headless, selecting these pods.
        governing = services.get(document["spec"].get("serviceName"))
        check(governing is not None and governing["spec"].get("clusterIP") == "None"
              and selects(governing, labels),
              f"{path}: {name}: serviceName must name a headless Service that selects its pods")
    else:
        # Scraped through a Service that selects its pods, or through the pod annotations.
        governing = next((s for s in services.values() if selects(s, labels)), None)
    (container,) = spec["containers"]
    env = {e["name"]: e.get("value", "") for e in container.get("env", [])}
    for variable in env:
        if variable.startswith("PTQ_"):
            check(variable in known_env, f"{path}: {name} sets {variable}, which ptq-server does not read")
    # ptq-server listens on loopback unless told: a pod must say where it listens.
    check("PTQ_LISTEN" in env, f"{path}: {name} must set PTQ_LISTEN (the server's default is loopback only)")
    # A cluster network is shared: pods serve TLS with identities, from Secrets mounted read-only.
    check("PTQ_TLS_CERT" in env and "PTQ_TLS_KEY" in env and "PTQ_INSECURE" not in env,
          f"{path}: {name} must serve TLS (PTQ_TLS_CERT, PTQ_TLS_KEY), not PTQ_INSECURE")
    check("PTQ_AUTH_TOKEN_FILE" in env, f"{path}: {name} must set PTQ_AUTH_TOKEN_FILE (identities)")
    secrets = {v["name"] for v in spec.get("volumes", []) if "secret" in v}
    secret_mounts = [m for m in container["volumeMounts"] if m["name"] in secrets]
    for variable in ("PTQ_TLS_CERT", "PTQ_TLS_KEY", "PTQ_AUTH_TOKEN_FILE"):
        check(any(env.get(variable, "").startswith(m["mountPath"] + "/") and m.get("readOnly") is True
                  for m in secret_mounts),
              f"{path}: {name}: {variable} must be a file of a Secret mounted read-only")
    port = int(env.get("PTQ_LISTEN", "127.0.0.1:50051").rsplit(":", 1)[1])
    check(any(p["containerPort"] == port for p in container["ports"]), f"{path}: {name} does not expose {port}")
    # kubelet's gRPC probes speak no TLS: probes run the image's client against the TLS port.
    # Liveness asks whether the workers make progress, not only whether the port answers.
    for probe, check_args in (("startupProbe", ["health"]), ("readinessProbe", ["health"]),
                              ("livenessProbe", ["health", "--service", "liveness"])):
        command = container.get(probe, {}).get("exec", {}).get("command", [])
        check(command[:1] == ["ptq-client"] and command[-len(check_args):] == check_args and "--tls-ca" in command
              and f"localhost:{port}" in command,
              f"{path}: {name} needs a {probe} running `ptq-client --server localhost:{port} --tls-ca ... "
              f"{' '.join(check_args)}`")
    # Metrics: served on the pod network, on a port the pod declares, where the scrape
    # annotations and the headless Service (ServiceMonitor) point.
    check("PTQ_METRICS_LISTEN" in env, f"{path}: {name} must serve metrics (PTQ_METRICS_LISTEN)")
    if "PTQ_METRICS_LISTEN" in env:
        metrics_port = int(env["PTQ_METRICS_LISTEN"].rsplit(":", 1)[1])
        check(any(p["containerPort"] == metrics_port and p.get("name") == "metrics" for p in container["ports"]),
              f"{path}: {name} must declare its metrics port {metrics_port} as `metrics`")
        annotations = document["spec"]["template"]["metadata"].get("annotations", {})
        check(annotations.get("prometheus.io/scrape") == "true"
              and annotations.get("prometheus.io/port") == str(metrics_port),
              f"{path}: {name}: prometheus.io/scrape and prometheus.io/port must point at {metrics_port}")
        # A StatefulSet's headless Service offers it to a ServiceMonitor; so does a Service
        # in front of a Deployment (workers have none: the annotations are how they are found).
        if document["kind"] == "StatefulSet" or governing is not None:
            check(governing is not None
                  and any(p.get("targetPort") == "metrics" for p in governing["spec"]["ports"]),
                  f"{path}: {name}: the Service selecting its pods must offer the metrics port")
    check(spec.get("terminationGracePeriodSeconds", 30) > grace_seconds(env),
          f"{path}: {name}: terminationGracePeriodSeconds must exceed PTQ_SHUTDOWN_GRACE_SECONDS")
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    data = mounts.get(env.get("PTQ_DATA_ROOT", "/data"))
    check(data is not None and data.get("readOnly") is True, f"{path}: {name}: the data root must be mounted read-only")
    state = mounts.get(env.get("PTQ_STATE_DIR", ""))
    volume_claims = {v["name"]: v["persistentVolumeClaim"]["claimName"]
                     for v in spec.get("volumes", []) if "persistentVolumeClaim" in v}
    check(state is not None and (state["name"] in claims or volume_claims.get(state["name"]) in claims),
          f"{path}: {name}: the state dir must be on a claim")
    requests = container["resources"]["requests"]
    check("cpu" in requests and "memory" in requests, f"{path}: {name}: needs cpu and memory requests")
    if env.get("PTQ_DEVICE") == "cuda":
        check(str(container["resources"].get("limits", {}).get("nvidia.com/gpu")) == "1",
              f"{path}: {name}: a cuda server needs an nvidia.com/gpu limit")


def selects(service, labels):
    return all(labels.get(k) == v for k, v in service["spec"].get("selector", {}).items())


def env_of(workload):
    (container,) = workload["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value", "") for e in container.get("env", [])}


def check_scaled(root, known_env):
    documents = render(root, "k8s/scaled")
    if documents is None:
        return
    path = "deploy/k8s/scaled"
    by_kind = {}
    for document in documents:
        by_kind.setdefault(document["kind"], []).append(document)
    services = {d["metadata"]["name"]: d for d in by_kind.get("Service", [])}
    shared = {d["metadata"]["name"] for d in by_kind.get("PersistentVolumeClaim", [])
              if "ReadWriteMany" in d["spec"]["accessModes"]}
    check(len(shared) == 1, f"{path}: expected one ReadWriteMany claim for the shared state, got {sorted(shared)}")
    roles = {}
    for deployment in by_kind.get("Deployment", []):
        name = deployment["metadata"]["name"]
        check_server_workload(deployment, known_env, path, services, shared)
        env = env_of(deployment)
        roles.setdefault(env.get("PTQ_ROLE"), []).append(deployment)
        check(env.get("PTQ_STORE", "").startswith("postgresql://"), f"{path}: {name} must use a postgresql:// store")
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        check(any(all(labels.get(k) == v for k, v in b["spec"]["selector"]["matchLabels"].items())
                  for b in by_kind.get("PodDisruptionBudget", [])),
              f"{path}: {name} needs a PodDisruptionBudget")
    apis, workers = roles.get("api", []), roles.get("worker", [])
    check(len(apis) == 1 and apis[0]["spec"]["replicas"] >= 2, f"{path}: expected an api Deployment of >= 2 replicas")
    check(apis and "ptq-server" in services
          and selects(services["ptq-server"], apis[0]["spec"]["template"]["metadata"]["labels"]),
          f"{path}: the ptq-server Service must select the api pods")
    devices = sorted(env_of(w).get("PTQ_DEVICE") for w in workers)
    check(devices == ["cpu", "cuda"], f"{path}: expected a GPU and a CPU worker Deployment, got devices {devices}")
    check(len(roles) == 2, f"{path}: every Deployment is an api or a worker, got roles {sorted(map(str, roles))}")


def check_manifests(root, known_env):
    documents = render(root, "k8s")
    if documents is None:
        return
    kinds = [document["kind"] for document in documents]
    services = {d["metadata"]["name"]: d for d in documents if d["kind"] == "Service"}
    for document in documents:
        if document["kind"] == "StatefulSet":
            claims = {c["metadata"]["name"] for c in document["spec"].get("volumeClaimTemplates", [])}
            check_server_workload(document, known_env, "deploy/k8s", services, claims)
    check(kinds.count("StatefulSet") == 2 and "Service" in kinds and "PersistentVolumeClaim" in kinds,
          f"deploy/k8s: expected a CPU and a GPU StatefulSet, Services and the datasets claim, got {kinds}")


def check_compose(root, known_env):
    with open(os.path.join(root, "deploy", "compose.yaml")) as f:
        service = yaml.safe_load(f)["services"]["ptq-server"]
    env = service["environment"]
    for variable in env:
        check(variable in known_env, f"compose.yaml sets {variable}, which ptq-server does not read")
    check(says_transport(env), "compose.yaml must set PTQ_TLS_CERT and PTQ_TLS_KEY, or PTQ_INSECURE explicitly")
    if "PTQ_INSECURE" in env or "PTQ_AUTH_TOKEN_FILE" not in env:
        check(all(str(p).startswith("127.0.0.1:") for p in service["ports"]),
              "compose.yaml: a port without TLS and identities is published on the host's loopback only")
    if "PTQ_TLS_CERT" in env:
        test = service.get("healthcheck", {}).get("test", [])
        check("--tls-ca" in test and test[-1:] == ["health"],
              "compose.yaml: a TLS server needs a healthcheck running `ptq-client ... --tls-ca ... health`")
    if "PTQ_METRICS_LISTEN" in env:
        metrics_port = env["PTQ_METRICS_LISTEN"].rsplit(":", 1)[1]
        check(f"127.0.0.1:{metrics_port}:{metrics_port}" in [str(p) for p in service["ports"]],
              "compose.yaml: the metrics port (no TLS, no authentication) is published on the host's loopback only")
    check(any(v.endswith(":/data:ro") for v in service["volumes"]), "compose.yaml: datasets must be mounted read-only")
    check(any(v.startswith("ptq-state:") for v in service["volumes"]), "compose.yaml: state must be on a volume")
    check(int(service["stop_grace_period"].rstrip("s")) > grace_seconds(env),
          "compose.yaml: stop_grace_period must exceed PTQ_SHUTDOWN_GRACE_SECONDS")


def stages(dockerfile):
    """{stage name: [instruction lines]} of a Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", dockerfile)
    result, current = {}, None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = re.match(r"FROM\s+\S+\s+AS\s+(\S+)", line, re.IGNORECASE)
        if match:
            current = match.group(1)
            result[current] = []
        elif current is not None:
            result[current].append(line)
    return result


def check_dockerfile(root):
    with open(os.path.join(root, "docker", "Dockerfile")) as f:
        parsed = stages(f.read())
    build, runtime = " ".join(parsed.get("build", [])), parsed.get("runtime", [])
    check("RUN deploy/install-deps.sh" in build, "Dockerfile: the build stage must run deploy/install-deps.sh")
    check("-DCMAKE_BUILD_TYPE=Release" in build, "Dockerfile: the build stage must build Release")
    joined = "\n".join(runtime)
    check("runtime-packages.txt" in joined, "Dockerfile: the runtime stage must install docker/runtime-packages.txt")
    for needed in ("/src/build/server/ptq-server", "/src/build/client/ptq-client", "/src/models/fashion_mnist"):
        check(any(l.startswith("COPY --from=build") and needed in l for l in runtime),
              f"Dockerfile: the runtime stage must copy {needed} from the build stage")
    users = [l.split()[1] for l in runtime if l.startswith("USER ")]
    check(users and users[-1] not in ("root", "0"), "Dockerfile: the runtime stage must run as a non-root user")
    check(any(l.startswith("HEALTHCHECK") and "ptq-client" in l and "health" in l for l in runtime),
          "Dockerfile: HEALTHCHECK must run ptq-client health")
    check(any(l.startswith("EXPOSE 50051") for l in runtime), "Dockerfile: must expose 50051")
    check(any(l.startswith("VOLUME") and "/var/lib/ptq" in l for l in runtime), "Dockerfile: state must be a volume")


def package_of(library):
    resolved = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True).stdout
    for line in resolved.splitlines():
        fields = line.split()
        if fields and fields[0] == library:
            # dpkg knows a file by the path its package installed, before or after /usr merging.
            real = os.path.realpath(fields[-1])
            for path in (fields[-1], real, real.replace("/usr/lib/", "/lib/", 1)):
                owner = subprocess.run(["dpkg", "-S", path], capture_output=True, text=True).stdout
                if owner:
                    return owner.split(":")[0]
    return None


def check_runtime_packages(root, binaries):
    with open(os.path.join(root, "docker", "runtime-packages.txt")) as f:
        lines = f.read().splitlines()
    listed = [l.strip() for l in lines if l.strip() and not l.startswith("#")]
    needed = set()
    for binary in binaries:
        dump = subprocess.run(["objdump", "-p", binary], capture_output=True, text=True).stdout
        for library in re.findall(r"NEEDED\s+(\S+)", dump):
            package = package_of(library)
            check(package is not None, f"{binary}: no Debian package provides {library}")
            if package is not None:
                needed.add(package)
    for package in sorted(needed - set(listed)):
        problems.append(f"runtime-packages.txt lacks {package}, which the binaries need")
    # A package that provides no NEEDED library must say why, in the comment right above it.
    for index, package in enumerate(lines):
        if package.strip() in listed and package.strip() not in needed:
            check(index > 0 and lines[index - 1].startswith("#"),
                  f"runtime-packages.txt lists {package.strip()}, which no binary needs, without a reason")


def main():
    root, server, client = sys.argv[1:4]
    known_env = server_env_vars(server)
    check(len(known_env) >= 8, f"ptq-server --help lists too few PTQ_ variables: {sorted(known_env)}")
    check_yaml(root)
    check_manifests(root, known_env)
    check_scaled(root, known_env)
    check_compose(root, known_env)
    check_dockerfile(root)
    check_runtime_packages(root, [server, client])
    for problem in problems:
        print("PROBLEM:", problem)
    print(f"{len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
