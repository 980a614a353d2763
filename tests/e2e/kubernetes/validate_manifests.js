// Checks the Kubernetes kit (deploy/kubernetes/*.yaml) offline, three ways:
//  1. schema: every object against the Kubernetes OpenAPI schema compiled into npm's
//     kubernetes-models (types, required fields, enums, formats); the PodMonitor against the
//     prometheus-operator CRD schema compiled into @kubernetes-models/prometheus-operator.
//  2. strict fields: those schemas accept unknown keys (no additionalProperties: false), so a
//     typo such as `readinesProbe` would pass; every key is therefore probed: given a value of
//     the wrong type, a key the schema knows fails validation at its own path, an unknown one
//     does not. (kubectl's strict field validation refuses unknown keys the same way.)
//  3. the kit's own promises, which no schema can see: native sidecar, probes on the right
//     paths and port, grace period above the drain timeout, spool on a mounted volume,
//     scrape annotations and PodMonitor matching the pod, sidecar config pointing at the
//     worker Service, image tag = the project's version.
// Usage: node validate_manifests.js KIT_DIR VERSION [--self-test]
// --self-test also breaks the kit in memory in several ways and fails unless every break is
// caught: a check that cannot fail is no check.
'use strict';

const fs = require('fs');
const path = require('path');
const YAML = require('yaml');

const MODELS = {
  'v1/ConfigMap': () => require('kubernetes-models/v1/ConfigMap').ConfigMap,
  'v1/Service': () => require('kubernetes-models/v1/Service').Service,
  'apps/v1/Deployment': () => require('kubernetes-models/apps/v1/Deployment').Deployment,
  'monitoring.coreos.com/v1/PodMonitor': () =>
      require('@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor')
          .PodMonitor,
};

function load(kitDir) {
  const docs = [];
  const files = fs.readdirSync(kitDir).filter((f) => f.endsWith('.yaml')).sort();
  if (files.length === 0) throw new Error(`no *.yaml in ${kitDir}`);
  for (const file of files) {
    const text = fs.readFileSync(path.join(kitDir, file), 'utf8');
    // uniqueKeys (the default) makes a key given twice an error, as the API server does.
    for (const doc of YAML.parseAllDocuments(text, {uniqueKeys: true})) {
      if (doc.errors.length) throw new Error(`${file}: ${doc.errors.map(String).join('; ')}`);
      const object = doc.toJS();
      if (object !== null) docs.push({file, object});
    }
  }
  return docs;
}

function modelFor(object) {
  const key = `${object.apiVersion}/${object.kind}`;
  const model = MODELS[key];
  if (!model) throw new Error(`no schema for ${key} (known: ${Object.keys(MODELS).join(', ')})`);
  return model();
}

function schemaErrors(Model, object) {
  try {
    new Model(object).validate();
    return [];
  } catch (error) {
    if (!error.errors) throw error;
    return error.errors;
  }
}

const pointer = (keys) =>
    keys.map((k) => '/' + String(k).replace(/~/g, '~0').replace(/\//g, '~1')).join('');

function unknownKeys(Model, object) {
  const unknown = [];
  const clone = (value) => JSON.parse(JSON.stringify(value));
  const walk = (value, keys) => {
    if (Array.isArray(value)) {
      value.forEach((item, i) => walk(item, keys.concat(i)));
      return;
    }
    if (value === null || typeof value !== 'object') return;
    for (const key of Object.keys(value)) {
      const at = keys.concat(key);
      const where = pointer(at);
      const known = [true, 'probe-string', 12345.5].some((probe) => {
        const copy = clone(object);
        let parent = copy;
        for (const k of keys) parent = parent[k];
        parent[key] = probe;
        return schemaErrors(Model, copy).some((e) => e.instancePath === where);
      });
      if (known)
        walk(value[key], at);
      else
        unknown.push(where);
    }
  };
  walk(object, []);
  return unknown;
}

function byKind(docs, kind, name) {
  const found = docs.filter((d) => d.object.kind === kind && d.object.metadata.name === name);
  if (found.length !== 1) throw new Error(`expected one ${kind} ${name}, found ${found.length}`);
  return found[0].object;
}

const matches = (selector, labels) =>
    Object.entries(selector || {}).every(([k, v]) => labels && labels[k] === v) &&
    Object.keys(selector || {}).length > 0;

// The kit's promises. Returns a list of problems (empty when all hold).
function kitProblems(docs, version) {
  const problems = [];
  const expect = (ok, message) => {
    if (!ok) problems.push(message);
  };
  const client = byKind(docs, 'Deployment', 'tidepool-client');
  const worker = byKind(docs, 'Deployment', 'tidepool-worker');
  const service = byKind(docs, 'Service', 'tidepool-worker');
  const configMap = byKind(docs, 'ConfigMap', 'tidepool-sidecar-config');
  const podMonitor = byKind(docs, 'PodMonitor', 'tidepool');
  const pod = client.spec.template;
  const spec = pod.spec;

  // Native sidecar: an init container that keeps running.
  const sidecars = (spec.initContainers || []).filter((c) => c.name === 'tidepool');
  expect(sidecars.length === 1, 'client pod: no initContainer named tidepool');
  if (sidecars.length !== 1) return problems;
  const sidecar = sidecars[0];
  expect(
      sidecar.restartPolicy === 'Always',
      'tidepool initContainer: restartPolicy must be Always (native sidecar)');
  expect(
      !(spec.containers || []).some((c) => c.name === 'tidepool'),
      'tidepool must be an init container (sidecar), not in containers');
  expect(
      sidecar.image === `tidepool:${version}`,
      `tidepool image is ${sidecar.image}, expected tidepool:${version} (CMake version)`);
  for (const c of spec.containers.concat(worker.spec.template.spec.containers)) {
    expect(
        c.image === `tidepool-demo-peer:${version}`,
        `${c.name} image is ${c.image}, expected tidepool-demo-peer:${version}`);
  }
  expect(
      pod.metadata.labels && matches(client.spec.selector.matchLabels, pod.metadata.labels),
      'client Deployment selector does not match its pod labels');
  expect(
      matches(worker.spec.selector.matchLabels, worker.spec.template.metadata.labels),
      'worker Deployment selector does not match its pod labels');

  // The route config, as tidepool will read it.
  const configText = (configMap.data || {})['tidepool.json'];
  let config = {};
  try {
    config = JSON.parse(configText);
  } catch (error) {
    problems.push(`ConfigMap tidepool.json is not JSON: ${error.message}`);
  }
  const httpPort = Number(String((config.http || {}).listen || '').split(':').pop());
  const drainMs = ((config.shutdown || {}).drain_timeout_ms) ?? 10000;
  expect(
      spec.terminationGracePeriodSeconds * 1000 > drainMs,
      `terminationGracePeriodSeconds ${spec.terminationGracePeriodSeconds} s is not above ` +
          `shutdown.drain_timeout_ms ${drainMs}`);

  // Probes: startup and readiness on /readyz, liveness on /healthz, all on the HTTP port.
  const metricsPort = (sidecar.ports || []).find((p) => p.name === 'metrics');
  expect(
      metricsPort && metricsPort.containerPort === httpPort,
      `sidecar port "metrics" is not http.listen's port ${httpPort}`);
  const probePort = (probe) => {
    const port = probe && probe.httpGet && probe.httpGet.port;
    return typeof port === 'string' ?
        (sidecar.ports || []).find((p) => p.name === port)?.containerPort :
        port;
  };
  for (const [name, wanted] of [
           ['startupProbe', '/readyz'], ['readinessProbe', '/readyz'],
           ['livenessProbe', '/healthz']]) {
    const probe = sidecar[name];
    expect(
        probe && probe.httpGet && probe.httpGet.path === wanted,
        `sidecar ${name} must GET ${wanted}`);
    expect(probePort(probe) === httpPort, `sidecar ${name} is not on port ${httpPort}`);
  }

  // Config and spool volumes.
  const volumes = Object.fromEntries((spec.volumes || []).map((v) => [v.name, v]));
  const mountOf = (dir) =>
      (sidecar.volumeMounts ||
       []).find((m) => dir === m.mountPath || dir.startsWith(m.mountPath.replace(/\/?$/, '/')));
  const args = sidecar.args || [];
  const configPath = args[args.indexOf('--config') + 1];
  expect(args.includes('--config') && configPath, 'sidecar args must pass --config FILE');
  const configMount = configPath && mountOf(configPath);
  expect(
      configMount && volumes[configMount.name] && volumes[configMount.name].configMap &&
          volumes[configMount.name].configMap.name === configMap.metadata.name &&
          configPath === `${configMount.mountPath}/tidepool.json`,
      `--config ${configPath} is not tidepool.json of ConfigMap ${configMap.metadata.name}`);
  for (const route of config.routes || []) {
    const dir = route.spool && route.spool.dir;
    expect(dir, `route ${route.name}: no spool`);
    const mount = dir && mountOf(dir);
    expect(
        mount && !mount.readOnly && volumes[mount.name] && !volumes[mount.name].configMap,
        `route ${route.name}: spool.dir ${dir} is not on a writable volume`);
  }

  // The client reaches the sidecar on localhost; the sidecar reaches the worker Service.
  const route = (config.routes || [])[0] || {};
  const frontend = ((route.frontend || {}).bind || [])[0] || '';
  const clientEnv =
      Object.fromEntries((spec.containers[0].env || []).map((e) => [e.name, e.value]));
  expect(
      clientEnv.TIDEPOOL_FRONTEND === frontend.replace('tcp://*:', 'tcp://127.0.0.1:'),
      `client TIDEPOOL_FRONTEND ${clientEnv.TIDEPOOL_FRONTEND} is not the frontend ${frontend}`);
  const backend = ((route.backend || {}).connect || [])[0] || '';
  const servicePort = (service.spec.ports || [])[0] || {};
  expect(
      backend === `tcp://${service.metadata.name}:${servicePort.port}`,
      `backend.connect ${backend} is not the worker Service ${service.metadata.name}:` +
          `${servicePort.port}`);
  expect(
      matches(service.spec.selector, worker.spec.template.metadata.labels),
      'worker Service selector does not match the worker pods');
  const workerPorts = worker.spec.template.spec.containers.flatMap((c) => c.ports || []);
  expect(
      workerPorts.some(
          (p) => p.name === servicePort.targetPort || p.containerPort === servicePort.targetPort),
      `Service targetPort ${servicePort.targetPort} is no worker container port`);

  // Scraping: annotations and the PodMonitor point at the same port and path.
  const annotations = pod.metadata.annotations || {};
  expect(annotations['prometheus.io/scrape'] === 'true', 'pod lacks prometheus.io/scrape');
  expect(
      annotations['prometheus.io/port'] === String(httpPort),
      `prometheus.io/port is not ${httpPort}`);
  expect(annotations['prometheus.io/path'] === '/metrics', 'prometheus.io/path is not /metrics');
  expect(
      matches(podMonitor.spec.selector.matchLabels, pod.metadata.labels),
      'PodMonitor selector does not match the client pod');
  const endpoint = (podMonitor.spec.podMetricsEndpoints || [])[0] || {};
  expect(
      endpoint.port === 'metrics' && endpoint.path === '/metrics',
      'PodMonitor endpoint is not port metrics, path /metrics');
  return problems;
}

function check(docs, version) {
  const problems = [];
  for (const {file, object} of docs) {
    const label = `${file}: ${object.kind} ${object.metadata && object.metadata.name}`;
    let Model;
    try {
      Model = modelFor(object);
    } catch (error) {
      problems.push(`${label}: ${error.message}`);
      continue;
    }
    for (const e of schemaErrors(Model, object)) {
      problems.push(
          `${label}: schema: ${e.instancePath || '/'} ${e.message || e.keyword} ` +
          JSON.stringify(e.params));
    }
    for (const where of unknownKeys(Model, object)) {
      problems.push(`${label}: unknown field ${where}`);
    }
  }
  try {
    problems.push(...kitProblems(docs, version));
  } catch (error) {
    problems.push(`kit: ${error.message}`);
  }
  return problems;
}

// Ways to break the kit; each must be reported.
const BREAKS = [
  [
    'typo in a field name', 'Deployment', 'tidepool-client',
    (o) => {
      const c = o.spec.template.spec.initContainers[0];
      c.readinesProbe = c.readinessProbe;
      delete c.readinessProbe;
    }
  ],
  [
    'wrong type', 'Deployment', 'tidepool-client',
    (o) => {
      o.spec.template.spec.terminationGracePeriodSeconds = '45';
    }
  ],
  [
    'missing required field', 'Service', 'tidepool-worker',
    (o) => {
      delete o.spec.ports[0].port;
    }
  ],
  [
    'bad enum', 'Service', 'tidepool-worker',
    (o) => {
      o.spec.ports[0].protocol = 'ZMTP';
    }
  ],
  [
    'PodMonitor typo', 'PodMonitor', 'tidepool',
    (o) => {
      o.spec.podMetricEndpoints = o.spec.podMetricsEndpoints;
    }
  ],
  [
    'PodMonitor wrong type', 'PodMonitor', 'tidepool',
    (o) => {
      o.spec.podMetricsEndpoints = {port: 'metrics'};
    }
  ],
  [
    'sidecar as a plain init container', 'Deployment', 'tidepool-client',
    (o) => {
      delete o.spec.template.spec.initContainers[0].restartPolicy;
    }
  ],
  [
    'grace below the drain timeout', 'Deployment', 'tidepool-client',
    (o) => {
      o.spec.template.spec.terminationGracePeriodSeconds = 20;
    }
  ],
  [
    'liveness on /readyz', 'Deployment', 'tidepool-client',
    (o) => {
      o.spec.template.spec.initContainers[0].livenessProbe.httpGet.path = '/readyz';
    }
  ],
  [
    'spool not on a volume', 'ConfigMap', 'tidepool-sidecar-config',
    (o) => {
      o.data['tidepool.json'] = o.data['tidepool.json'].replace('/var/lib/tidepool', '/tmp/spool');
    }
  ],
  [
    'backend not the Service', 'ConfigMap', 'tidepool-sidecar-config',
    (o) => {
      o.data['tidepool.json'] = o.data['tidepool.json'].replace('tidepool-worker:', 'worker:');
    }
  ],
  [
    'PodMonitor misses the pod', 'PodMonitor', 'tidepool',
    (o) => {
      o.spec.selector.matchLabels = {'tidepool.io/sidecar': 'yes'};
    }
  ],
  [
    'stale image tag', 'Deployment', 'tidepool-client',
    (o) => {
      o.spec.template.spec.initContainers[0].image = 'tidepool:0.0.9';
    }
  ],
];

function selfTest(docs, version) {
  const missed = [];
  for (const [what, kind, name, breakIt] of BREAKS) {
    const copy = docs.map((d) => ({file: d.file, object: JSON.parse(JSON.stringify(d.object))}));
    breakIt(byKind(copy, kind, name));
    const problems = check(copy, version);
    if (problems.length === 0)
      missed.push(what);
    else
      console.log(`self-test: ${what}: caught (${problems[0]})`);
  }
  return missed;
}

function main() {
  const [kitDir, version, flag] = process.argv.slice(2);
  if (!kitDir || !version) {
    console.error('usage: node validate_manifests.js KIT_DIR VERSION [--self-test]');
    process.exit(2);
  }
  const docs = load(kitDir);
  const problems = check(docs, version);
  for (const p of problems) console.error(`FAIL ${p}`);
  for (const {file, object} of docs) {
    console.log(
        `${problems.length ? 'checked' : 'ok'} ${file}: ${object.apiVersion} ` +
        `${object.kind} ${object.metadata.name}`);
  }
  let failed = problems.length > 0;
  if (flag === '--self-test') {
    const missed = selfTest(docs, version);
    for (const m of missed) console.error(`FAIL self-test: "${m}" was not caught`);
    failed = failed || missed.length > 0;
  }
  if (failed) process.exit(1);
  console.log(`${docs.length} objects valid (schemas, strict fields, kit checks)`);
}

main();
