// A real third-party BIND client: the npm package "socks" (SocksClient).
// Usage: node bind.js PROXY_HOST PROXY_PORT VERSION(4|5)
// It asks the proxy to BIND, connects a peer to the bound address, sends
// a line each way, and prints "OK <peer address seen by the client>".
const { SocksClient } = require('socks');
const net = require('net');

const [host, port, version] = process.argv.slice(2);
const timer = setTimeout(() => { console.log('TIMEOUT'); process.exit(2); }, 10000);
const client = new SocksClient({
  proxy: { host, port: Number(port), type: Number(version) },
  command: 'bind',
  destination: { host: '0.0.0.0', port: 0 },
});
let peer;
client.on('error', (err) => { console.log('ERROR ' + err.message); process.exit(1); });
client.on('bound', (info) => {
  let bhost = info.remoteHost.host;
  if (bhost === '0.0.0.0') bhost = host;
  peer = net.connect(info.remoteHost.port, bhost, () => peer.write('from peer\n'));
  peer.on('data', (d) => {
    if (d.toString() === 'from client\n') {
      clearTimeout(timer);
      console.log('OK ' + peer.localAddress + ':' + peer.localPort + ' ' + seen);
      process.exit(0);
    }
  });
});
let seen = '';
client.on('established', (info) => {
  seen = info.remoteHost.host + ':' + info.remoteHost.port;
  info.socket.on('data', (d) => {
    if (d.toString() === 'from peer\n') info.socket.write('from client\n');
  });
});
client.connect();
