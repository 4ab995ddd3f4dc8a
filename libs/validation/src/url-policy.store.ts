import type { UrlPolicy } from './webhook-url.types';

// The policy comes from config (TARGET_ALLOW_CIDRS) once at boot. Decorators run inside class-validator, where no
// dependency injection reaches, so the default has to live at module level.
let defaultPolicy: Readonly<UrlPolicy> = Object.freeze({});

/** Sets the process-wide URL policy, used whenever a check is not given a policy of its own. Call once at boot. */
export function setDefaultUrlPolicy(policy: UrlPolicy): void {
  defaultPolicy = Object.freeze({ ...policy });
}

/** The process-wide URL policy (empty, i.e. strictest, until {@link setDefaultUrlPolicy} is called). */
export function getDefaultUrlPolicy(): Readonly<UrlPolicy> {
  return defaultPolicy;
}
