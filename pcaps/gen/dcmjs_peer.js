// dcmjs-dimse peers for medtap's capture generator (pcaps/gen/interop.sh). Tested with dcmjs-dimse 0.3.3, Node.js 20.
//   node dcmjs_peer.js server PORT AET LIFETIME_S
//   node dcmjs_peer.js client HOST PORT CALLING CALLED SCENARIO [FILE]
// Server: accepts associations called AET (others: A-ASSOCIATE-RJ permanent, service user,
// called AE not recognized), every proposed context with its first transfer syntax; answers
// C-ECHO, C-FIND (two matches), C-STORE, N-CREATE, N-SET, N-ACTION with success; aborts the
// association (A-ABORT, service user) on N-DELETE. Exits after LIFETIME_S seconds.
// Client scenarios: full (one association: C-ECHO, Study Root C-FIND, C-STORE of FILE, MPPS
// N-CREATE + N-SET, Storage Commitment N-ACTION; user identity negotiation, username and
// passcode), echo (C-ECHO only), abort (C-ECHO, then N-DELETE, which the server aborts).
const dimse = require('dcmjs-dimse');
const { Client, Server, Scp, Dataset } = dimse;
const { CEchoRequest, CFindRequest, CStoreRequest, NCreateRequest, NSetRequest, NActionRequest, NDeleteRequest } = dimse.requests;
const { CEchoResponse, CFindResponse, CStoreResponse, NCreateResponse, NSetResponse, NActionResponse } = dimse.responses;
const { Status, PresentationContextResult, RejectResult, RejectSource, RejectReason } = dimse.constants;

const MPPS = '1.2.840.10008.3.1.2.3.3';
const COMMIT = '1.2.840.10008.1.20.1';
const COMMIT_INSTANCE = '1.2.840.10008.1.20.1.1';
const log = (...a) => console.error('[dcmjs-peer]', ...a);

const [mode, ...args] = process.argv.slice(2);
if (mode === 'server') {
  const [port, aet, lifetime] = args;
  class PeerScp extends Scp {
    associationRequested(association) {
      this.association = association;
      if (association.getCalledAeTitle() !== aet) {
        log('reject called', association.getCalledAeTitle());
        this.sendAssociationReject(RejectResult.Permanent, RejectSource.ServiceUser, RejectReason.CalledAeNotRecognized);
        return;
      }
      for (const ctx of association.getPresentationContexts()) {
        const pc = association.getPresentationContext(ctx.id);
        pc.setResult(PresentationContextResult.Accept, pc.getTransferSyntaxUids()[0]);
      }
      this.sendAssociationAccept();
    }
    cEchoRequest(request, callback) {
      const r = CEchoResponse.fromRequest(request); r.setStatus(Status.Success); callback(r);
    }
    cFindRequest(request, callback) {
      const out = [];
      for (const [name, id] of [['TESTPATIENT^OSCAR', 'PID-TEST-0006'], ['TESTPATIENT^PAPA', 'PID-TEST-0007']]) {
        const p = CFindResponse.fromRequest(request);
        p.setDataset(new Dataset({ QueryRetrieveLevel: 'STUDY', PatientName: name, PatientID: id, StudyInstanceUID: '2.25.1' + id.slice(-1) }));
        p.setStatus(Status.Pending); out.push(p);
      }
      const done = CFindResponse.fromRequest(request); done.setStatus(Status.Success); out.push(done);
      callback(out);
    }
    cStoreRequest(request, callback) {
      const r = CStoreResponse.fromRequest(request); r.setStatus(Status.Success); callback(r);
    }
    nCreateRequest(request, callback) {
      const r = NCreateResponse.fromRequest(request); r.setStatus(Status.Success); callback(r);
    }
    nSetRequest(request, callback) {
      const r = NSetResponse.fromRequest(request); r.setStatus(Status.Success); callback(r);
    }
    nActionRequest(request, callback) {
      const r = NActionResponse.fromRequest(request); r.setStatus(Status.Success); callback(r);
    }
    nDeleteRequest(request, callback) {
      log('abort on N-DELETE');
      this.sendAbort(0, 0);
    }
    associationReleaseRequested() { this.sendAssociationReleaseResponse(); }
  }
  const server = new Server(PeerScp);
  server.on('networkError', (e) => log('network error', e.message));
  server.listen(Number(port));
  log('listening', port);
  setTimeout(() => { server.close(); process.exit(0); }, Number(lifetime) * 1000);
} else if (mode === 'client') {
  const [host, port, calling, called, scenario, file] = args;
  const client = new Client();
  const opts = { associationLingerTimeout: 0 };
  const resp = (what) => (r) => log(what, 'status', r.getStatus().toString(16));
  const add = (rq, what) => { rq.on('response', resp(what)); client.addRequest(rq); };
  if (scenario === 'full') {
    opts.userIdentity = { type: 2, positiveResponseRequested: true, primaryField: 'techuser', secondaryField: 'S3cretPassw0rd' };
    add(new CEchoRequest(), 'echo');
    add(CFindRequest.createStudyFindRequest({ PatientName: 'TESTPATIENT*', PatientID: '', StudyInstanceUID: '' }), 'find');
    add(new CStoreRequest(file), 'store');
    const sop = '2.25.9990001';
    const create = new NCreateRequest(MPPS, sop);
    create.setDataset(new Dataset({ PerformedProcedureStepStatus: 'IN PROGRESS', Modality: 'CT', PatientName: 'TESTPATIENT^OSCAR' }));
    add(create, 'ncreate');
    const set = new NSetRequest(MPPS, sop);
    set.setDataset(new Dataset({ PerformedProcedureStepStatus: 'COMPLETED' }));
    add(set, 'nset');
    const act = new NActionRequest(COMMIT, COMMIT_INSTANCE, 1);
    act.setDataset(new Dataset({ TransactionUID: '2.25.9990002', ReferencedSOPSequence: [{ ReferencedSOPClassUID: '1.2.840.10008.5.1.4.1.1.2', ReferencedSOPInstanceUID: '2.25.9990003' }] }));
    add(act, 'naction');
  } else if (scenario === 'echo') {
    add(new CEchoRequest(), 'echo');
  } else if (scenario === 'abort') {
    add(new CEchoRequest(), 'echo');
    add(new NDeleteRequest(MPPS, '2.25.9990001'), 'ndelete');
  }
  client.on('associationRejected', (r) => log('rejected', JSON.stringify(r)));
  client.on('associationAborted', () => log('aborted'));
  client.on('networkError', (e) => log('network error', e.message));
  client.on('closed', () => { log('closed'); process.exit(0); });
  client.send(host, Number(port), calling, called, opts);
  // dcmjs-dimse does not close the client after the peer's A-ABORT: the abort scenario ends here.
  const abort = scenario === 'abort';
  setTimeout(() => { log(abort ? 'done' : 'timeout'); process.exit(abort ? 0 : 1); }, abort ? 3000 : 20000);
}
