// `npm run bench -- validation`: the median cost of one webhook URL check (target: under 20 microseconds), and
// of the costliest inputs (up to 64 KiB; target: under 200 microseconds).
import { runValidationBench } from './validation.mjs';

export default async function run() {
  const r = await runValidationBench();
  return {
    name: 'validation',
    metrics: [
      { name: 'URL check median', value: r.median_us, unit: 'µs', target: '< 20', pass: r.median_us < 20 },
      { name: 'URL check p99', value: r.p99_us, unit: 'µs' },
      {
        name: 'URL check, costliest input',
        value: r.worst_case_us,
        unit: 'µs',
        target: '< 200',
        pass: r.worst_case_us < 200,
      },
      { name: 'checks timed', value: r.checks, unit: '' },
    ],
  };
}
