// `npm run bench -- validation`: the median cost of one webhook URL check (target: under 20 microseconds).
import { runValidationBench } from './validation.mjs';

export default async function run() {
  const r = await runValidationBench();
  return {
    name: 'validation',
    metrics: [
      { name: 'URL check median', value: r.median_us, unit: 'µs', target: '< 20', pass: r.median_us < 20 },
      { name: 'URL check p99', value: r.p99_us, unit: 'µs' },
      { name: 'checks timed', value: r.checks, unit: '' },
    ],
  };
}
