#!/usr/bin/python3
"""What can be checked of docker/ and deploy/ without a Docker engine or a cluster.

Usage: check_deploy.py REPO_ROOT PTQ_SERVER PTQ_CLIENT

- yamllint --strict on every YAML file under deploy/;
- `kubectl kustomize deploy/k8s` renders (kubectl comes with deploy/install-deps.sh, so a
  missing kubectl is a problem, not a skip);
- the manifests: gRPC readiness/liveness probes on the served port, metrics served and annotated
  for scraping, non-root, datasets mounted
  read-only, state on a claim, GPU requests for the GPU pool, a termination grace period
  longer than the server's drain, and only environment variables ptq-server knows;
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
    result = subprocess.run(["kubectl", "kustomize", os.path.join(root, "deploy", "k8s")],
                            capture_output=True, text=True)
    check(result.returncode == 0, "kubectl kustomize deploy/k8s: " + result.stderr)


def grace_seconds(env):
    return int(env.get("PTQ_SHUTDOWN_GRACE_SECONDS", "30"))


def says_transport(env):
    """ptq-server starts only with TLS files or --insecure: a deployment must say which."""
    return ("PTQ_TLS_CERT" in env and "PTQ_TLS_KEY" in env) or str(env.get("PTQ_INSECURE", "")).lower() == "true"


def check_statefulset(document, known_env, path, services):
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
    # The governing Service: headless, selecting these pods.
    governing = services.get(document["spec"].get("serviceName"))
    labels = document["spec"]["template"]["metadata"]["labels"]
    check(governing is not None and governing["spec"].get("clusterIP") == "None"
          and all(labels.get(k) == v for k, v in governing["spec"]["selector"].items()),
          f"{path}: {name}: serviceName must name a headless Service that selects its pods")
    claims = {c["metadata"]["name"] for c in document["spec"].get("volumeClaimTemplates", [])}
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
        check(governing is not None and any(p.get("targetPort") == "metrics" for p in governing["spec"]["ports"]),
              f"{path}: {name}: the headless Service must offer the metrics port")
    check(spec.get("terminationGracePeriodSeconds", 30) > grace_seconds(env),
          f"{path}: {name}: terminationGracePeriodSeconds must exceed PTQ_SHUTDOWN_GRACE_SECONDS")
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    data = mounts.get(env.get("PTQ_DATA_ROOT", "/data"))
    check(data is not None and data.get("readOnly") is True, f"{path}: {name}: the data root must be mounted read-only")
    state = mounts.get(env.get("PTQ_STATE_DIR", ""))
    check(state is not None and state["name"] in claims, f"{path}: {name}: the state dir must be on a claim")
    requests = container["resources"]["requests"]
    check("cpu" in requests and "memory" in requests, f"{path}: {name}: needs cpu and memory requests")
    if env.get("PTQ_DEVICE") == "cuda":
        check(str(container["resources"].get("limits", {}).get("nvidia.com/gpu")) == "1",
              f"{path}: {name}: a cuda server needs an nvidia.com/gpu limit")


def check_manifests(root, known_env):
    k8s = os.path.join(root, "deploy", "k8s")
    documents = []
    for file in sorted(os.listdir(k8s)):
        if not file.endswith(".yaml") or file == "kustomization.yaml":
            continue
        with open(os.path.join(k8s, file)) as f:
            documents.extend((file, document) for document in yaml.safe_load_all(f))
    kinds = [document["kind"] for _, document in documents]
    services = {d["metadata"]["name"]: d for _, d in documents if d["kind"] == "Service"}
    for file, document in documents:
        if document["kind"] == "StatefulSet":
            check_statefulset(document, known_env, file, services)
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
    check_compose(root, known_env)
    check_dockerfile(root)
    check_runtime_packages(root, [server, client])
    for problem in problems:
        print("PROBLEM:", problem)
    print(f"{len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
