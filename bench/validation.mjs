// Cost of one webhook URL check, measured on the compiled library (what the API really runs).
// Build first (`npm run build`); run directly to print {name, median_us, p99_us, worst_case_us, checks} as JSON.
import { fileURLToPath, pathToFileURL } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const libraryUrl = pathToFileURL(join(root, 'dist/libs/validation/src/index.js')).href;

// A realistic mix: mostly ordinary receivers, some IDN and IP literals, and the refusals that real traffic
// produces (typos, private addresses, internal names, credential endpoints). Refused URLs cost more: they run
// every rule to report every violation.
const URLS = [
  'https://example.com/webhooks/anchor',
  'https://hooks.customer-app.io/v1/receive?token=3f9a1c2b7d',
  'https://api.acme-corp.com:8443/integrations/anchor/events',
  'https://webhook.site/0b5c7e1e-6d4b-4bd0-9c1e-1a2b3c4d5e6f',
  'https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXX',
  'https://my-receiver.herokuapp.com/events#anchor',
  'https://abcdefghijklmnop.lambda-url.us-east-1.on.aws/',
  'https://abc123defg.execute-api.eu-west-1.amazonaws.com/prod/hook',
  'https://receiver.vercel.app/api/webhook?source=anchor&v=2',
  'https://bücher.de/webhook',
  'https://xn--e1afmkfd.xn--p1ai/hook',
  'https://93.184.216.34/hook',
  'https://[2606:4700:4700::1111]:8443/hook',
  'HTTPS://EXAMPLE.ORG/Hook',
  'https://localhost.example.com/hook',
  'https://internal.example.org/anchor',
  'https://a.b.c.example.co.uk/deep/path/to/the/receiver?x=1&y=2',
  'https://example.com/path@with-at?email=user@example.org',
  'https://sqs.us-east-1.amazonaws.com/123456789012/queue',
  'https://receiver.example.net:9443/',
  'http://example.com/hook',
  'https://127.0.0.1:8080/hook',
  'https://localhost:3000/webhook',
  'https://169.254.169.254/latest/meta-data/',
  'https://metadata.google.internal/computeMetadata/v1/',
  'https://sts.us-east-1.amazonaws.com/?Action=GetCallerIdentity',
  'https://user:pass@example.com/',
  'https://2130706433/',
  'https://[::ffff:127.0.0.1]/',
  'https://intranet/',
];

// Inputs built to cost the most: the longest URL accepted (2,048 characters) split into a thousand labels, a run
// of spaces, and bodies of up to 64 KiB (the API's body limit) that are refused for their length.
const WORST_CASES = [
  'https://' + 'a.'.repeat(1018) + 'com/',
  'https://' + 'a.'.repeat(1010) + 'svc.cluster.local/',
  'https://a' + ' '.repeat(2030) + 'x',
  'https://[' + '%'.repeat(2030) + ']/',
  'https://' + 'a.'.repeat(32_000) + 'com',
  'https://a' + ' '.repeat(60_000) + 'x',
];
const WORST_CASE_CALLS = 200;

const WARMUP_CALLS = 50_000;
const BATCH = 300; // ten passes over the mix per sample: long enough to dwarf the timer's own cost
const SAMPLES = 600;

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

/** Median and p99 cost of one checkWebhookUrl call, in microseconds, from per-batch averages. */
export async function runValidationBench() {
  const { checkWebhookUrl } = await import(libraryUrl).catch((error) => {
    throw new Error(`cannot load ${libraryUrl}; run \`npm run build\` first`, { cause: error });
  });
  let sink = 0; // consumed below so that no call can be optimized away
  for (let i = 0; i < WARMUP_CALLS; i++) sink += checkWebhookUrl(URLS[i % URLS.length]).violations.length;

  const perCallUs = [];
  let checks = 0;
  for (let s = 0; s < SAMPLES; s++) {
    const offset = s % URLS.length; // rotate the start so every URL leads a batch equally often
    const start = process.hrtime.bigint();
    for (let i = 0; i < BATCH; i++)
      sink += checkWebhookUrl(URLS[(offset + i) % URLS.length]).violations.length;
    const elapsedNs = Number(process.hrtime.bigint() - start);
    perCallUs.push(elapsedNs / BATCH / 1000);
    checks += BATCH;
  }
  // The slowest of the worst cases, per call.
  let worstUs = 0;
  for (const url of WORST_CASES) {
    for (let i = 0; i < WORST_CASE_CALLS; i++) sink += checkWebhookUrl(url).violations.length;
    const start = process.hrtime.bigint();
    for (let i = 0; i < WORST_CASE_CALLS; i++) sink += checkWebhookUrl(url).violations.length;
    worstUs = Math.max(worstUs, Number(process.hrtime.bigint() - start) / WORST_CASE_CALLS / 1000);
  }
  if (sink < 0) throw new Error('unreachable');

  perCallUs.sort((a, b) => a - b);
  const round = (x) => Math.round(x * 100) / 100;
  return {
    name: 'validation',
    median_us: round(percentile(perCallUs, 50)),
    p99_us: round(percentile(perCallUs, 99)),
    worst_case_us: round(worstUs),
    checks,
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  console.log(JSON.stringify(await runValidationBench()));
}
