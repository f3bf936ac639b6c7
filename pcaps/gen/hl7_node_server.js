// node-hl7-server listener used by pcaps/gen/interop.sh: acknowledges every message it parses
// with AA (the library builds the ACK: MSH-10 "ACK", MSA-2 = the message's MSH-10).
//   node hl7_node_server.js PORT LIFETIME_S
// Tested with node-hl7-server 2.5.0 (node-hl7-client 3.2.0), Node.js 20. Exits after LIFETIME_S.
const { Server } = require('node-hl7-server');

const [port, lifetime] = process.argv.slice(2);
const server = new Server({ bindAddress: '0.0.0.0' });
const inbound = server.createInbound({ port: Number(port) }, async (req, res) => {
  const m = req.getMessage();
  console.error('[hl7-node-server] got', m.get('MSH.9').toString(), m.get('MSH.10').toString());
  await res.sendResponse('AA');
});
inbound.on('client.error', (e) => console.error('[hl7-node-server] client error', e && e.message));
setTimeout(async () => {
  await inbound.close();
  process.exit(0);
}, Number(lifetime) * 1000);
