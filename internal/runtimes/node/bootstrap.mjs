// shoal's Node.js bootstrap: runs a handler written for AWS Lambda
// ("file.handler", CommonJS or ES module, async or callback style) against
// the Lambda Runtime API at AWS_LAMBDA_RUNTIME_API.
//
// With AWS_LAMBDA_MAX_CONCURRENCY set it runs that many poll loops at once in
// this process, each handling one invocation at a time; the Runtime API
// server enforces the limit.
//
// As Lambda's Node.js runtime does, it offers the global awslambda with
// streamifyResponse (a handler (event, responseStream, context) whose writes
// reach the caller as they are made: the response is posted chunked in
// streaming mode, and a failure after the first byte goes in the trailers)
// and HttpResponseStream.from (the status, headers and cookies a function URL
// answers a streamed response with).
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import util from 'node:util';
import { pathToFileURL } from 'node:url';
import { AsyncLocalStorage } from 'node:async_hooks';

const env = process.env;
const api = env.AWS_LAMBDA_RUNTIME_API || '';
const colon = api.lastIndexOf(':');
const apiHost = api.slice(0, colon);
const apiPort = Number(api.slice(colon + 1));
const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
const base = '/2018-06-01/runtime';
const multi = env.AWS_LAMBDA_MAX_CONCURRENCY !== undefined;
const loops = multi ? Math.max(1, parseInt(env.AWS_LAMBDA_MAX_CONCURRENCY, 10) || 1) : 1;

function request(method, p, headers, body) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: apiHost, port: apiPort, method, path: p, agent, headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

// Response streaming, as Lambda's Node.js runtime marks and runs it.
const STREAMING = Symbol.for('aws.lambda.runtime.handler.streaming');
const HIGH_WATER_MARK = Symbol.for('aws.lambda.runtime.handler.streaming.highWaterMark');
const HTTP_INTEGRATION = 'application/vnd.awslambda.http-integration-response';

class HttpResponseStream {
  // from writes a function URL's response metadata (statusCode, headers,
  // cookies) ahead of the body, with the eight zero bytes that end it.
  static from(underlyingStream, prelude) {
    underlyingStream.setContentType(HTTP_INTEGRATION);
    underlyingStream.write(JSON.stringify(prelude || {}));
    underlyingStream.write(new Uint8Array(8));
    return underlyingStream;
  }
}

globalThis.awslambda = {
  streamifyResponse(handler, options) {
    handler[STREAMING] = 'response';
    if (options && Number.isInteger(options.highWaterMark)) handler[HIGH_WATER_MARK] = options.highWaterMark;
    return handler;
  },
  HttpResponseStream,
};

// invokeStreaming runs a streamified handler: its response stream is the
// body of the POST …/response, sent chunked as it writes.
function invokeStreaming(fn, event, ctx, id) {
  return new Promise((resolve) => {
    const req = http.request({
      host: apiHost, port: apiPort, method: 'POST', path: `${base}/invocation/${id}/response`, agent,
      highWaterMark: fn[HIGH_WATER_MARK],
      headers: {
        'Lambda-Runtime-Function-Response-Mode': 'streaming',
        'Transfer-Encoding': 'chunked',
        'Content-Type': 'application/octet-stream',
        'Trailer': 'Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body',
      },
    });
    req.on('response', (res) => {
      res.resume();
      res.on('end', resolve);
      res.on('error', resolve);
    });
    req.on('error', (e) => {
      process.stderr.write(`streaming the response failed: ${e && e.message}\n`);
      resolve();
    });
    req.setContentType = (ct) => {
      if (!req.headersSent) req.setHeader('Content-Type', ct);
    };
    let failed = false;
    const fail = (e) => {
      if (failed) return;
      failed = true;
      const body = errorBody(e);
      if (jsonLogs) console.error(e instanceof Error ? e : body);
      else console.error('Invoke Error \t' + JSON.stringify(body));
      if (req.writableEnded) return;
      req.addTrailers({
        'Lambda-Runtime-Function-Error-Type': body.errorType,
        'Lambda-Runtime-Function-Error-Body': Buffer.from(JSON.stringify(body)).toString('base64'),
      });
      req.end();
    };
    let r;
    try {
      r = fn(event, req, ctx);
    } catch (e) {
      fail(e);
      return;
    }
    Promise.resolve(r).then(() => {
      if (!req.writableEnded) req.end();
    }, (e) => fail(e ?? 'rejected'));
  });
}

function post(p, obj, errorType) {
  let body;
  try {
    body = JSON.stringify(obj === undefined ? null : obj);
  } catch (e) {
    return post(p.replace(/response$/, 'error'),
      { errorType: 'Runtime.MarshalError', errorMessage: 'Unable to stringify response body: ' + e.message, trace: [] },
      'Runtime.MarshalError');
  }
  if (body === undefined) body = 'null';
  const headers = { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) };
  if (errorType) headers['Lambda-Runtime-Function-Error-Type'] = errorType;
  return request('POST', p, headers, body);
}

// Logs: console output becomes Lambda's "time\trequestId\tLEVEL\tmessage",
// or with AWS_LAMBDA_LOG_FORMAT=JSON one JSON object a line
// ({"timestamp","level","requestId","message"}, as Lambda's Node.js runtime
// writes them). Methods below AWS_LAMBDA_LOG_LEVEL write nothing.
const store = new AsyncLocalStorage();
let current = {};
const jsonLogs = (env.AWS_LAMBDA_LOG_FORMAT || '').toUpperCase() === 'JSON';
const priorities = { TRACE: 1, DEBUG: 2, INFO: 3, WARN: 4, ERROR: 5, FATAL: 6 };
const minPriority = priorities[(env.AWS_LAMBDA_LOG_LEVEL || '').toUpperCase()] || priorities.TRACE;

// errorFields serialises an Error as Lambda's JSON logs do.
function errorFields(e) {
  return Object.assign({
    errorType: e?.constructor?.name ?? 'UnknownError',
    errorMessage: e.message,
    stackTrace: typeof e.stack === 'string' ? e.stack.split('\n') : e.stack,
  }, e);
}

function jsonLine(level, inv, args) {
  const rec = { timestamp: new Date().toISOString(), level, requestId: inv.id };
  if (inv.tenantId) rec.tenantId = inv.tenantId;
  if (args.length <= 1) {
    rec.message = args[0];
    try {
      return JSON.stringify(rec, (_, v) => (v instanceof Error ? errorFields(v) : v));
    } catch {
      rec.message = util.format(rec.message);
      return JSON.stringify(rec);
    }
  }
  rec.message = util.format(...args);
  const err = args.slice(1).find((a) => a instanceof Error);
  if (err) {
    const f = errorFields(err);
    rec.errorType = f.errorType;
    rec.errorMessage = f.errorMessage;
    rec.stackTrace = Array.isArray(f.stackTrace) ? f.stackTrace : [];
  }
  return JSON.stringify(rec);
}

function patchConsole() {
  const levels = { log: 'INFO', info: 'INFO', warn: 'WARN', error: 'ERROR', debug: 'DEBUG', trace: 'TRACE', fatal: 'FATAL' };
  for (const [name, level] of Object.entries(levels)) {
    if (priorities[level] < minPriority) {
      console[name] = () => {};
      continue;
    }
    console[name] = (...args) => {
      const inv = (multi ? store.getStore() : current) || {};
      if (jsonLogs) {
        process.stdout.write(jsonLine(level, inv, args) + '\n');
        return;
      }
      process.stdout.write(`${new Date().toISOString()}\t${inv.id || 'undefined'}\t${level}\t${util.format(...args)}\n`);
    };
  }
}

function errorBody(e) {
  if (e instanceof Error) {
    return { errorType: e.name || 'Error', errorMessage: e.message, trace: String(e.stack || '').split('\n') };
  }
  if (e && typeof e === 'object') {
    return { errorType: e.errorType || e.name || 'Error', errorMessage: e.errorMessage || e.message || JSON.stringify(e), trace: [] };
  }
  return { errorType: typeof e, errorMessage: String(e), trace: [] };
}

class InitFault extends Error {
  constructor(type, message, cause) {
    super(message);
    this.name = type;
    if (cause && cause.stack) this.stack = cause.stack;
  }
}

async function loadHandler() {
  const handler = env._HANDLER || '';
  const root = env.LAMBDA_TASK_ROOT || process.cwd();
  const dir = path.dirname(handler);
  const m = /^([^.]*)\.(.*)$/.exec(path.basename(handler));
  if (!m) throw new InitFault('Runtime.MalformedHandlerName', "Bad handler " + handler);
  const [, moduleName, fnPath] = m;
  const moduleBase = path.resolve(root, dir, moduleName);
  let file;
  for (const ext of ['.js', '.mjs', '.cjs']) {
    if (fs.existsSync(moduleBase + ext)) { file = moduleBase + ext; break; }
  }
  let mod;
  try {
    mod = file ? await import(pathToFileURL(file).href) : await import(moduleName);
  } catch (e) {
    if (e instanceof SyntaxError) throw new InitFault('Runtime.UserCodeSyntaxError', `${e.name}: ${e.message}`, e);
    if (!file && (e.code === 'ERR_MODULE_NOT_FOUND' || e.code === 'MODULE_NOT_FOUND')) {
      throw new InitFault('Runtime.ImportModuleError', `Error: Cannot find module '${moduleName}'\nRequire stack:\n- ${process.argv[1]}`, e);
    }
    if (e.code === 'ERR_MODULE_NOT_FOUND' || e.code === 'MODULE_NOT_FOUND') {
      throw new InitFault('Runtime.ImportModuleError', `Error: ${e.message}`, e);
    }
    throw e;
  }
  let fn = mod;
  for (const part of fnPath.split('.')) {
    fn = fn == null ? undefined : (fn[part] ?? (fn.default ? fn.default[part] : undefined));
  }
  if (typeof fn !== 'function') {
    throw new InitFault('Runtime.HandlerNotFound', `${path.basename(handler)} is undefined or not exported`);
  }
  return fn;
}

function invokeHandler(fn, event, ctx) {
  return new Promise((resolve, reject) => {
    let settled = false;
    const cb = (err, res) => {
      if (settled) return;
      settled = true;
      if (err !== null && err !== undefined) reject(err); else resolve(res);
    };
    ctx.done = cb;
    ctx.succeed = (r) => cb(null, r);
    ctx.fail = (e) => cb(e === undefined ? 'handled' : e);
    let r;
    try {
      r = fn(event, ctx, cb);
    } catch (e) {
      cb(e);
      return;
    }
    if (r && typeof r.then === 'function') r.then((v) => cb(null, v), (e) => cb(e ?? 'rejected'));
    else if (fn.length < 3) cb(null, r);
  });
}

function parseJSONHeader(v) {
  if (!v) return undefined;
  try { return JSON.parse(v); } catch { return undefined; }
}

async function loop(fn) {
  for (;;) {
    const next = await request('GET', `${base}/invocation/next`, {});
    if (next.status !== 200) {
      process.stderr.write(`invocation/next answered ${next.status}: ${next.body}\n`);
      process.exit(1);
    }
    const h = next.headers;
    const id = h['lambda-runtime-aws-request-id'];
    const deadline = Number(h['lambda-runtime-deadline-ms']);
    const inv = { id, tenantId: h['lambda-runtime-aws-tenant-id'] };
    if (!multi) {
      current = inv;
      if (h['lambda-runtime-trace-id']) env._X_AMZN_TRACE_ID = h['lambda-runtime-trace-id'];
      else delete env._X_AMZN_TRACE_ID;
    }
    const ctx = {
      callbackWaitsForEmptyEventLoop: true,
      functionName: env.AWS_LAMBDA_FUNCTION_NAME,
      functionVersion: env.AWS_LAMBDA_FUNCTION_VERSION,
      invokedFunctionArn: h['lambda-runtime-invoked-function-arn'],
      memoryLimitInMB: env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
      awsRequestId: id,
      logGroupName: env.AWS_LAMBDA_LOG_GROUP_NAME,
      logStreamName: env.AWS_LAMBDA_LOG_STREAM_NAME,
      identity: parseJSONHeader(h['lambda-runtime-cognito-identity']),
      clientContext: parseJSONHeader(h['lambda-runtime-client-context']),
      tenantId: h['lambda-runtime-aws-tenant-id'],
      getRemainingTimeInMillis: () => Math.max(deadline - Date.now(), 0),
    };
    await store.run(inv, async () => {
      let event;
      try {
        event = next.body.length ? JSON.parse(next.body.toString('utf8')) : null;
      } catch (e) {
        const body = { errorType: 'Runtime.UnmarshalError', errorMessage: 'Unable to parse event: ' + e.message, trace: [] };
        await post(`${base}/invocation/${id}/error`, body, body.errorType);
        return;
      }
      if (fn[STREAMING] === 'response') {
        await invokeStreaming(fn, event, ctx, id);
        return;
      }
      try {
        const result = await invokeHandler(fn, event, ctx);
        await post(`${base}/invocation/${id}/response`, result);
      } catch (e) {
        const body = errorBody(e);
        if (jsonLogs) console.error(e instanceof Error ? e : body);
        else console.error('Invoke Error \t' + JSON.stringify(body));
        await post(`${base}/invocation/${id}/error`, body, body.errorType);
      }
    });
  }
}

async function main() {
  patchConsole();
  let fn;
  try {
    fn = await loadHandler();
  } catch (e) {
    const body = errorBody(e);
    console.error(`${body.errorType}: ${body.errorMessage}`);
    try { await post(`${base}/init/error`, body, body.errorType); } catch {}
    process.exit(1);
  }
  process.on('uncaughtException', (e) => {
    console.error('Uncaught Exception \t' + JSON.stringify(errorBody(e)));
    process.exit(129);
  });
  process.on('unhandledRejection', (e) => {
    console.error('Unhandled Promise Rejection \t' + JSON.stringify(errorBody(e)));
    process.exit(128);
  });
  const all = [];
  for (let i = 0; i < loops; i++) all.push(loop(fn));
  await Promise.all(all);
}

main().catch((e) => {
  process.stderr.write(`bootstrap failed: ${e && e.stack}\n`);
  process.exit(1);
});
