#!/usr/bin/env node
// A scriptable SMSC for ccshortlink's tests, built on the npm `smpp` server.
// Prints one JSON object per line on stdout for everything a test may want to check.
'use strict';

const smpp = require('smpp');

const USAGE = 'node server.js --port 0 --system-id ID --password PW [--delay-ms N] ' +
  '[--throttle N] [--throttle-status 0x58] [--reject-status 0x0B] [--drop-after N] ' +
  '[--drop-before-resp] [--receipts] [--receipt-tlv] [--receipt-stat DELIVRD] ' +
  '[--mo FROM:TEXT]... [--quiet] [--tls-key KEY.pem --tls-cert CERT.pem] [--bind-delay-ms N]\n' +
  'stdin: a line "mo FROM:TEXT" sends that MO to every bound session now';

function parseArgs(argv) {
  const opts = {
    port: 0, host: '127.0.0.1', systemId: 'ccshortlink', password: 'secret', delayMs: 0,
    throttle: 0, throttleStatus: 0x58, rejectStatus: 0, dropAfter: 0, dropBeforeResp: false,
    receipts: false, receiptTlv: false, receiptStat: 'DELIVRD', mo: [], quiet: false,
    tlsKey: '', tlsCert: '', bindDelayMs: 0,
  };
  const numeric = {
    '--port': 'port', '--delay-ms': 'delayMs', '--throttle': 'throttle',
    '--throttle-status': 'throttleStatus', '--reject-status': 'rejectStatus',
    '--drop-after': 'dropAfter', '--bind-delay-ms': 'bindDelayMs',
  };
  const text = {'--system-id': 'systemId', '--password': 'password', '--host': 'host',
    '--receipt-stat': 'receiptStat', '--tls-key': 'tlsKey', '--tls-cert': 'tlsCert'};
  const flags = {'--drop-before-resp': 'dropBeforeResp', '--receipts': 'receipts',
    '--receipt-tlv': 'receiptTlv', '--quiet': 'quiet'};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg in flags) {
      opts[flags[arg]] = true;
    } else if (arg in numeric || arg in text || arg === '--mo') {
      const value = argv[++i];
      if (value === undefined) throw new Error(`${arg} needs a value\n${USAGE}`);
      if (arg === '--mo') opts.mo.push(value);
      else if (arg in text) opts[text[arg]] = value;
      else {
        opts[numeric[arg]] = Number(value);  // Number() understands 0x58 as well as 88
        if (Number.isNaN(opts[numeric[arg]])) throw new Error(`${arg}: not a number: ${value}`);
      }
    } else {
      throw new Error(`unknown argument ${arg}\n${USAGE}`);
    }
  }
  return opts;
}

const opts = parseArgs(process.argv.slice(2));

// --quiet (benchmarks): only lifecycle events, not one line per message.
const PER_MESSAGE = new Set(['submit_sm', 'deliver_sm', 'deliver_sm_resp', 'enquire_link']);

function emit(event) {
  if (opts.quiet && PER_MESSAGE.has(event.event)) return;
  process.stdout.write(JSON.stringify(event) + '\n');
}

// Keep submit_sm short_message as raw octets (the library would decode it) so the Python side
// can reassemble concatenated parts exactly as they travelled.
delete smpp.commands.submit_sm.params.short_message.filter;
// A vendor TLV the client has never heard of: real SMSCs add these to receipts.
smpp.addTLV('vendor_network_info', {id: 0x1401, type: smpp.types.tlv.buffer});

// Message ids differ between runs so that a restarted SMSC never reuses one.
let nextMessageId = Math.floor(Math.random() * 0xffffff) * 0x10000;
let acceptedCount = 0;
let throttledCount = 0;
let submitCount = 0;
let sessionCount = 0;

function decodePart(dataCoding, esmClass, octets) {
  // The npm library's own coders: an independent check of the client's encoding.
  const payload = (esmClass & 0x40) && octets.length ? octets.slice(octets[0] + 1) : octets;
  if (dataCoding === 0x08) return Buffer.from(payload).swap16().toString('utf16le');
  if (dataCoding === 0x00) return smpp.gsmCoder.decode(payload, 0x00);
  return payload.toString('latin1');
}

function encodeMo(text) {
  if (smpp.gsmCoder.GSM.charRegex.test(text)) {
    return {data_coding: 0x00, short_message: smpp.gsmCoder.encode(text, 0x00)};
  }
  return {data_coding: 0x08, short_message: Buffer.from(text, 'utf16le').swap16()};
}

const MESSAGE_STATES = {ENROUTE: 1, DELIVRD: 2, EXPIRED: 3, DELETED: 4, UNDELIV: 5, ACCEPTD: 6,
  UNKNOWN: 7, REJECTD: 8};

function smppDate(date) {
  const pad = (n) => String(n).padStart(2, '0');
  return pad(date.getUTCFullYear() % 100) + pad(date.getUTCMonth() + 1) + pad(date.getUTCDate()) +
    pad(date.getUTCHours()) + pad(date.getUTCMinutes());
}

function sendReceipt(session, sessionId, submit, messageId, text) {
  const now = smppDate(new Date());
  // With the TLV on, the text carries the id in decimal, as several real SMSCs do: the client
  // must prefer receipted_message_id.
  const textId = opts.receiptTlv ? String(parseInt(messageId, 16)) : messageId;
  const excerpt = text.slice(0, 20).replace(/[^\x20-\x7e]/g, '?');
  const body = `id:${textId} sub:001 dlvrd:001 submit date:${now} done date:${now} ` +
    `stat:${opts.receiptStat} err:000 text:${excerpt}`;
  const receipt = {
    source_addr_ton: submit.dest_addr_ton, source_addr_npi: submit.dest_addr_npi,
    source_addr: submit.destination_addr, destination_addr: submit.source_addr,
    esm_class: 0x04, data_coding: 0x00, short_message: Buffer.from(body, 'ascii'),
  };
  if (opts.receiptTlv) {
    receipt.receipted_message_id = messageId;
    receipt.message_state = MESSAGE_STATES[opts.receiptStat] || smpp.consts.MESSAGE_STATE.UNKNOWN;
    receipt.vendor_network_info = Buffer.from('460-00;cell=1234', 'ascii');
  }
  emit({event: 'deliver_sm', kind: 'receipt', session: sessionId, message_id: messageId,
    text: body});
  session.deliver_sm(receipt, (resp) => {
    emit({event: 'deliver_sm_resp', kind: 'receipt', session: sessionId, message_id: messageId,
      seq: resp.sequence_number, status: resp.command_status});
  });
}

function sendMo(session, sessionId, spec) {
  const colon = spec.indexOf(':');
  const from = spec.slice(0, colon);
  const text = spec.slice(colon + 1);
  const pdu = Object.assign({source_addr_ton: 1, source_addr_npi: 1, source_addr: from,
    destination_addr: '10690000', esm_class: 0x00}, encodeMo(text));
  emit({event: 'deliver_sm', kind: 'mo', session: sessionId, source_addr: from, text: text});
  session.deliver_sm(pdu, (resp) => {
    emit({event: 'deliver_sm_resp', kind: 'mo', session: sessionId, source_addr: from,
      text: text, seq: resp.sequence_number, status: resp.command_status});
  });
}

// Bound sessions by id: a customer's reply typed on stdin goes to each (see the end).
const boundSessions = new Map();

function onSession(session) {
  const sessionId = ++sessionCount;
  let bound = false;
  let closed = false;
  let inflight = 0;  // submit_sm received in this session and not yet answered
  emit({event: 'connect', session: sessionId});
  // Like production SMSCs: answers go out at once, not batched by Nagle's algorithm.
  session.socket.setNoDelay(true);

  session.on('error', (err) => {
    // Peers vanish mid-write in the reconnect tests; that must not kill the SMSC.
    emit({event: 'session_error', session: sessionId, error: String(err && err.code || err)});
  });
  session.on('close', () => {
    closed = true;
    boundSessions.delete(sessionId);
    emit({event: 'close', session: sessionId});
  });

  const onBind = (pdu) => {
    const ok = pdu.system_id === opts.systemId && pdu.password === opts.password;
    emit({event: 'bind', session: sessionId, command: pdu.command, system_id: pdu.system_id,
      system_type: pdu.system_type, ok: ok});
    if (!ok) {
      session.send(pdu.response({command_status: smpp.ESME_RINVPASWD}));
      return;
    }
    const accept = () => {
      bound = true;
      boundSessions.set(sessionId, session);
      session.send(pdu.response({system_id: 'testsmsc'}));
      for (const spec of opts.mo) sendMo(session, sessionId, spec);
    };
    if (opts.bindDelayMs > 0) setTimeout(accept, opts.bindDelayMs);  // a slow SMSC
    else accept();
  };
  session.on('bind_transceiver', onBind);
  session.on('bind_transmitter', onBind);
  session.on('bind_receiver', onBind);

  session.on('enquire_link', (pdu) => {
    emit({event: 'enquire_link', session: sessionId, seq: pdu.sequence_number});
    session.send(pdu.response());
  });
  session.on('unbind', (pdu) => {
    emit({event: 'unbind', session: sessionId});
    session.send(pdu.response());
    session.close();
  });
  session.on('unknown', (pdu) => {
    session.send(pdu.response());
  });

  session.on('submit_sm', (pdu) => {
    submitCount++;
    const octets = Buffer.isBuffer(pdu.short_message) ? pdu.short_message :
      (pdu.message_payload || Buffer.alloc(0));
    let status = 0;
    if (!bound) status = smpp.ESME_RINVBNDSTS;
    else if (throttledCount < opts.throttle) { throttledCount++; status = opts.throttleStatus; }
    else if (opts.rejectStatus) status = opts.rejectStatus;
    const messageId = status ? '' : (nextMessageId++).toString(16);
    if (!status) acceptedCount++;
    inflight++;
    const event = {
      event: 'submit_sm', session: sessionId, seq: pdu.sequence_number,
      source_addr: pdu.source_addr, source_addr_ton: pdu.source_addr_ton,
      source_addr_npi: pdu.source_addr_npi, destination_addr: pdu.destination_addr,
      dest_addr_ton: pdu.dest_addr_ton, dest_addr_npi: pdu.dest_addr_npi,
      data_coding: pdu.data_coding, esm_class: pdu.esm_class,
      registered_delivery: pdu.registered_delivery, short_message_hex: octets.toString('hex'),
      text: decodePart(pdu.data_coding, pdu.esm_class, octets), message_id: messageId,
      status: status, inflight: inflight, submit_number: submitCount,
    };
    const drop = !status && opts.dropAfter > 0 && acceptedCount === opts.dropAfter;
    const answer = () => {
      inflight--;
      // Print before answering: once the client has its response, the line is already out.
      event.answered = !closed && session.socket.writable;
      emit(event);
      if (event.answered) {
        session.send(pdu.response({command_status: status, message_id: messageId}));
      }
      if (drop) {
        emit({event: 'drop', session: sessionId, after_response: true});
        session.destroy();
      } else if (event.answered && !status && opts.receipts && pdu.registered_delivery) {
        sendReceipt(session, sessionId, pdu, messageId, event.text);
      }
    };
    if (drop && opts.dropBeforeResp) {
      // The SMSC took the message but the client never hears so: it must resend.
      inflight--;
      event.answered = false;
      emit(event);
      emit({event: 'drop', session: sessionId, after_response: false});
      session.destroy();
    } else if (opts.delayMs > 0) {
      setTimeout(answer, opts.delayMs);
    } else {
      answer();
    }
  });
}

// With --tls-key/--tls-cert it is an SMPP-over-TLS SMSC: sessions start after the handshake,
// and a client that refuses the certificate (or speaks plain SMPP) shows up as tls_error.
const fs = require('fs');
const server = opts.tlsKey || opts.tlsCert ?
  smpp.createServer({key: fs.readFileSync(opts.tlsKey), cert: fs.readFileSync(opts.tlsCert)},
    onSession) :
  smpp.createServer(onSession);
server.on('tlsClientError', (err) => {
  emit({event: 'tls_error', error: String(err && (err.code || err.message) || err)});
});
server.on('error', (err) => {
  process.stderr.write(`smsc: ${err.stack || err}\n`);
  process.exit(2);
});
server.listen(opts.port, opts.host, () => {
  emit({event: 'listening', port: server.address().port, tls: Boolean(opts.tlsKey)});
});
// A customer replying while the daemon is bound: "mo FROM:TEXT" on stdin, one per line.
let stdinBuffer = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => {
  stdinBuffer += chunk;
  let newline;
  while ((newline = stdinBuffer.indexOf('\n')) >= 0) {
    const line = stdinBuffer.slice(0, newline);
    stdinBuffer = stdinBuffer.slice(newline + 1);
    if (!line.startsWith('mo ')) continue;
    for (const [sessionId, session] of boundSessions) sendMo(session, sessionId, line.slice(3));
  }
});
process.on('SIGTERM', () => {
  emit({event: 'stopping'});
  process.exit(0);
});
