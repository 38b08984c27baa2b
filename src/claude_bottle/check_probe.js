'use strict';
// The containment probe of `claude-bottle check` (see claude_bottle/check.py, which builds the
// configuration passed as the last argument and groups what this prints into classes).
//
// Run by node as the agent user inside a live bottle, it tries each way out a bottle must not have
// and prints one JSON line per attempt, {"cls", "probe", "result", "ok"} (ok: the attempt failed as
// it must), then {"done": true}. Only node's own modules: the agent image has no python.
const net = require('net'), dgram = require('dgram'), dns = require('dns'), fs = require('fs'),
  os = require('os'), http = require('http'), tls = require('tls'), crypto = require('crypto');

const cfg = JSON.parse(process.argv[process.argv.length - 1]);
const T = cfg.timeout_ms;
// A TCP answer of any kind (a connection, or a reset: "connection refused") means a packet came back.
const REACHED = new Set(['open', 'ECONNREFUSED']);

function report(cls, probe, result, ok) {
  process.stdout.write(JSON.stringify({cls, probe, result, ok}) + '\n');
}

function once(resolve, cleanup) {
  let over = false;
  return value => { if (!over) { over = true; cleanup(); resolve(value); } };
}

function split(target) {  // "host:port" or "[v6]:port"
  const m = /^\[(.*)\]:(\d+)$/.exec(target) || /^(.*):(\d+)$/.exec(target);
  return {host: m[1], port: Number(m[2])};
}

function join(host, port) {
  return net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}

function tcp(host, port) {
  return new Promise(resolve => {
    const s = net.connect({host, port});
    const done = once(resolve, () => { clearTimeout(timer); s.destroy(); });
    const timer = setTimeout(() => done('timeout'), T);
    s.on('connect', () => done('open'));
    s.on('error', e => done(e.code || e.message));
  });
}

async function tcpAll(cls, targets, bad = REACHED) {
  await Promise.all([...new Set(targets)].map(async target => {
    const {host, port} = split(target);
    const result = await tcp(host, port);
    report(cls, `tcp ${target}`, result, !bad.has(result));
  }));
}

function dnsQuery(name, type) {
  const id = crypto.randomBytes(2);
  const labels = name.split('.').map(l => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)]));
  return Buffer.concat([id, Buffer.from([1, 0, 0, 1, 0, 0, 0, 0, 0, 0]), ...labels,
    Buffer.from([0, 0, type, 0, 1])]);
}

function udp(host, port, payload) {
  return new Promise(resolve => {
    const s = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4');
    const done = once(resolve, () => { clearTimeout(timer); try { s.close(); } catch (e) { /* closed */ } });
    const timer = setTimeout(() => done('no reply'), T);
    s.on('message', m => done(m.length >= 12
      ? `reply: rcode ${m[3] & 15}, ${m.readUInt16BE(6)} answer(s)` : `reply: ${m.length} bytes`));
    s.on('error', e => done(e.code || e.message));
    s.send(payload, port, host, e => { if (e) done(e.code || e.message); });
  });
}

async function udpAll(cls, targets, name) {
  await Promise.all([...new Set(targets)].map(async target => {
    const {host, port} = split(target);
    const result = await udp(host, port, dnsQuery(name, 1));
    report(cls, `udp ${target} (DNS query for ${name})`, result, !result.startsWith('reply'));
  }));
}

async function resolveWith(server, name, type) {
  const r = new dns.promises.Resolver({timeout: T, tries: 1});
  if (server) r.setServers([server]);
  try {
    const answer = await r.resolve(name, type);
    return answer.length ? `answered ${JSON.stringify(answer).slice(0, 80)}` : 'empty';
  } catch (e) {
    return e.code || e.message;
  }
}

async function lookup(name) {
  try {
    const found = await dns.promises.lookup(name, {all: true});
    return {addresses: found.map(a => a.address)};
  } catch (e) {
    return {error: e.code || e.message};
  }
}

// One request to the egress proxy: a plain one (absolute URL) or a CONNECT. Resolves to
// {status, rule} (rule: the X-Claude-Bottle-Rule header our proxy puts on its refusals) or {error}.
function viaProxy(method, path, host, onTunnel) {
  return new Promise(resolve => {
    const req = http.request({host: cfg.proxy.host, port: cfg.proxy.port, method, path, agent: false,
      headers: {Host: host}});
    const done = once(resolve, () => { clearTimeout(timer); req.destroy(); });
    const timer = setTimeout(() => done({error: 'timeout'}), 3 * T);
    const answer = res => ({status: res.statusCode, rule: res.headers['x-claude-bottle-rule'] || ''});
    req.on('response', res => { res.resume(); done(answer(res)); });
    req.on('connect', (res, socket) => {
      if (res.statusCode !== 200 || !onTunnel) { socket.destroy(); done(answer(res)); return; }
      onTunnel(socket).then(inner => { socket.destroy(); done({...answer(res), inner}); });
    });
    req.on('error', e => done({error: e.code || e.message}));
    req.end();
  });
}

function shown(r) {
  if (r.error) return `error ${r.error}`;
  const rule = r.rule ? ` (${r.rule})` : '';
  return `${r.status}${rule}${r.inner ? `; ${r.inner.result}` : ''}`;
}

// Refused by our proxy: a 403 naming its rule. ``lenient`` also takes a 400, for request lines a
// proxy may reject as malformed before judging them.
function refused(r, lenient) {
  return !r.error && ((r.status === 403 && r.rule !== '') || (lenient && r.status === 400));
}

async function proxyRefuses(cls, method, target, lenient) {
  const host = method === 'CONNECT' ? target : new URL(target).host;
  const r = await viaProxy(method, target, host);
  report(cls, `proxy ${method} ${target}`, shown(r), refused(r, lenient));
}

// -- what the agent can find out about its own network -------------------------------------------
function defaultGateways() {
  try {
    return fs.readFileSync('/proc/net/route', 'utf8').split('\n').slice(1)
      .map(l => l.trim().split(/\s+/)).filter(f => f[1] === '00000000' && f[2] && f[2] !== '00000000')
      .map(f => Buffer.from(f[2], 'hex').reverse().join('.'));
  } catch (e) {
    return [];
  }
}

function ipv4Subnets() {
  return Object.values(os.networkInterfaces()).flat()
    .filter(a => a.family === 'IPv4' && !a.internal && a.cidr);
}

function toInt(ip) { return ip.split('.').reduce((n, o) => n * 256 + Number(o), 0); }
function toIp(n) { return [24, 16, 8, 0].map(s => Math.floor(n / 2 ** s) % 256).join('.'); }

// The first addresses of each subnet the agent is on (the bottle's neighbours), less its own, the
// bundle's and the gateways (the host's: probed as such).
function neighbours(skip) {
  const out = [];
  for (const a of ipv4Subnets()) {
    const bits = Number(a.cidr.split('/')[1]);
    const base = toInt(a.address) - (toInt(a.address) % 2 ** (32 - bits));
    const size = 2 ** (32 - bits);
    for (let i = 1; i <= Math.min(cfg.neighbour_count, size - 2); i++) {
      const ip = toIp(base + i);
      if (!skip.has(ip) && ip !== a.address) out.push(ip);
    }
  }
  return out;
}

async function bundleAddresses() {
  const found = new Set();
  for (const name of cfg.bundle_names) {
    const r = await lookup(name);
    (r.addresses || []).forEach(a => found.add(a));
  }
  return found;
}

function hostAddresses() {
  const gws = ipv4Subnets().map(a => {
    const bits = Number(a.cidr.split('/')[1]);
    return toIp(toInt(a.address) - (toInt(a.address) % 2 ** (32 - bits)) + 1);
  });
  return [...new Set([...cfg.host_addresses, ...defaultGateways(), ...gws])];
}

// -- the classes -----------------------------------------------------------------------------------
const CLASSES = {
  'direct-tcp': async () => {
    await tcpAll('direct-tcp', [...cfg.direct_tcp, ...cfg.far_side.map(ip => join(ip, cfg.proxy.port))]);
  },

  'direct-udp': async () => {
    await udpAll('direct-udp', cfg.direct_udp, cfg.outside_names[0]);
  },

  'dns': async () => {
    for (const name of cfg.bundle_names.slice(0, 1)) {  // the proxy's name must resolve
      const r = await lookup(name);
      report('dns', `lookup ${name}`, r.addresses ? r.addresses.join(' ') : r.error, !!r.addresses);
    }
    const servers = ['', ...cfg.dns_servers, ...hostAddresses()];
    await Promise.all(cfg.outside_names.flatMap(name => [
      lookup(name).then(r => report('dns', `lookup ${name}`,
        r.addresses ? `resolved to ${r.addresses.join(' ')}` : r.error, !r.addresses)),
      ...servers.flatMap(server => ['A', 'AAAA', 'TXT'].map(type =>
        resolveWith(server, name, type).then(result => report('dns',
          `${type} ${name} via ${server || 'the configured resolver'}`, result,
          !result.startsWith('answered'))))),
    ]));
  },

  'metadata-and-host': async () => {
    const hosts = hostAddresses();
    const metadata = cfg.metadata.map(ip => join(ip, 80));
    await Promise.all([
      tcpAll('metadata-and-host', [...metadata,
        ...hosts.flatMap(h => cfg.host_ports.map(p => join(h, p)))]),
      ...[...cfg.metadata, ...cfg.metadata_names, ...hosts].map(h =>
        proxyRefuses('metadata-and-host', 'GET', `http://${net.isIPv6(h) ? `[${h}]` : h}/`, false)),
      lookup('host.docker.internal').then(r => report('metadata-and-host', 'lookup host.docker.internal',
        r.addresses ? `resolved to ${r.addresses.join(' ')}` : r.error, !r.addresses)),
    ]);
  },

  'ip-literals': async () => {
    await Promise.all([
      ...cfg.ip_literal_urls.map(u => proxyRefuses('ip-literals', 'GET', u, false)),
      ...cfg.ip_literal_connects.map(t => proxyRefuses('ip-literals', 'CONNECT', t, false)),
      ...cfg.ip_literal_odd.map(t => proxyRefuses('ip-literals', 'CONNECT', t, true)),
    ]);
  },

  'sibling-bottles': async () => {
    const skip = new Set([...await bundleAddresses(), ...hostAddresses()]);
    const near = neighbours(skip);
    const targets = [...near, ...cfg.siblings].flatMap(ip => cfg.sibling_ports.map(p => join(ip, p)));
    report('sibling-bottles', 'neighbours probed', `${near.length} address(es) near the agent, `
      + `${cfg.siblings.length} of other bottles`, true);
    await Promise.all([
      tcpAll('sibling-bottles', targets),
      ...cfg.siblings.map(ip =>
        proxyRefuses('sibling-bottles', 'GET', `http://${join(ip, cfg.proxy.port)}/`, false)),
    ]);
  },

  'docker-socket': async () => {
    for (const path of cfg.sockets) {
      let result = 'absent', ok = true;
      try {
        const st = fs.statSync(path);
        result = st.isSocket() ? 'a socket is there' : 'something is there';
        ok = false;
      } catch (e) {
        if (e.code !== 'ENOENT' && e.code !== 'ENOTDIR') { result = e.code; ok = false; }
      }
      report('docker-socket', `file ${path}`, result, ok);
    }
    // Only an answering engine API fails this class; a host that merely answers fails metadata-and-host.
    await tcpAll('docker-socket', hostAddresses().flatMap(h => [2375, 2376].map(p => join(h, p))),
      new Set(['open']));
  },

  'capabilities': async () => {
    const status = fs.readFileSync('/proc/self/status', 'utf8');
    const field = name => ((new RegExp(`^${name}:\\s*(\\S+)`, 'm')).exec(status) || [])[1] || '?';
    for (const name of ['CapEff', 'CapPrm', 'CapAmb']) {
      const value = field(name);
      report('capabilities', name, value, /^0+$/.test(value));
    }
    report('capabilities', 'NoNewPrivs', field('NoNewPrivs'), field('NoNewPrivs') === '1');
    report('capabilities', 'uid', String(process.getuid()), process.getuid() !== 0);
  },

  'ipv6': async () => {
    let lines = [];
    try {
      lines = fs.readFileSync('/proc/net/if_inet6', 'utf8').trim().split('\n').filter(Boolean);
    } catch (e) { /* no IPv6 in this kernel */ }
    // if_inet6: address, index, prefix length, scope (00: global), flags, interface
    const global = lines.map(l => l.trim().split(/\s+/)).filter(f => f[3] === '00');
    report('ipv6', 'global IPv6 addresses', global.length ? global.map(f => `${f[0]} on ${f[5]}`).join(', ')
      : `none (${lines.length} address(es) in all)`, global.length === 0);
    await Promise.all([
      tcpAll('ipv6', cfg.ipv6_tcp),
      udpAll('ipv6', cfg.ipv6_udp, cfg.outside_names[0]),
    ]);
  },

  'proxy-bypass': async () => {
    const allowed = cfg.allowed_host, outside = cfg.outside_names[0];
    const probes = [proxyRefuses('proxy-bypass', 'CONNECT', `${outside}:443`, false)];
    if (allowed) {
      // Bytes that are neither HTTP nor TLS through a tunnel to an allowed host: nothing may come back
      // but the proxy's own refusal.
      probes.push(viaProxy('CONNECT', `${allowed}:443`, `${allowed}:443`, socket => rawBytes(socket))
        .then(r => report('proxy-bypass', `raw bytes through CONNECT ${allowed}:443`,
          r.inner ? r.inner.result : `no tunnel: ${shown(r)}`, r.inner ? r.inner.ok : r.status !== 200)));
      probes.push(proxyRefuses('proxy-bypass', 'CONNECT', `${allowed}:22`, false));
      // A request whose Host names another server than the one it goes to.
      probes.push(viaProxy('GET', `http://${allowed}/`, outside).then(r =>
        report('proxy-bypass', `proxy GET http://${allowed}/ with Host: ${outside}`, shown(r),
          refused(r, true))));
      probes.push(viaProxy('CONNECT', `${allowed}:443`, `${allowed}:443`, socket =>
        hostInTunnel(socket, allowed, outside)).then(r =>
        report('proxy-bypass', `Host: ${outside} inside CONNECT ${allowed}:443`,
          r.inner ? r.inner.result : `no tunnel: ${shown(r)}`, r.inner ? r.inner.ok : r.status !== 200)));
    }
    await Promise.all(probes);
  },
};

function rawBytes(socket) {
  return new Promise(resolve => {
    let got = Buffer.alloc(0);
    const done = once(resolve, () => clearTimeout(timer));
    const judge = () => {
      if (!got.length) return done({result: 'nothing came back', ok: true});
      const text = got.toString('latin1');
      if (text.startsWith('HTTP/')) return done({result: `the proxy answered ${text.split('\r\n')[0]}`, ok: true});
      done({result: `${got.length} byte(s) came back: ${got.subarray(0, 16).toString('hex')}`, ok: false});
    };
    const timer = setTimeout(judge, T);
    socket.on('data', d => { got = Buffer.concat([got, d]); });
    socket.on('close', judge);
    socket.on('error', judge);
    socket.write(Buffer.concat([Buffer.from('SSH-2.0-OpenSSH_9.6\r\n'), crypto.randomBytes(64)]));
  });
}

function hostInTunnel(socket, allowed, outside) {
  return new Promise(resolve => {
    let got = '';
    const done = once(resolve, () => clearTimeout(timer));
    const judge = () => {
      const line = got.split('\r\n')[0];
      const status = Number((/^HTTP\/\S+ (\d{3})/.exec(line) || [])[1]);
      done({result: line ? `answered ${line}` : 'no answer', ok: !line || [400, 403, 421].includes(status)});
    };
    const timer = setTimeout(judge, 2 * T);
    const s = tls.connect({socket, servername: allowed}, () =>
      s.write(`GET / HTTP/1.1\r\nHost: ${outside}\r\nConnection: close\r\n\r\n`));
    s.on('data', d => { got += d.toString('latin1'); });
    s.on('close', judge);
    s.on('error', e => done({result: `TLS failed (${e.code || e.message})`, ok: true}));
  });
}

(async () => {
  await Promise.all(Object.entries(CLASSES).map(([cls, run]) => run().catch(e =>
    report(cls, 'probe', `the probe failed: ${e && e.stack ? e.stack.split('\n')[0] : e}`, false))));
  process.stdout.write(JSON.stringify({done: true}) + '\n');
  process.exit(0);
})();
