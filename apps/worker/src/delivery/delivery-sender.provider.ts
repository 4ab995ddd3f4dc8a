import type { Provider } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '@app/config';
import { isPublicAddress, parseCidrList } from '@app/validation';
import { SsrfSafeSender, type HostResolver, type SsrfSafeSenderOptions } from './ssrf-safe.sender';

/** Token of the host resolver deliveries use; null means the name servers of /etc/resolv.conf. Tests pin answers. */
export const DNS_RESOLVER = Symbol('DNS_RESOLVER');
/** Token of extra TLS trust for receivers; null in production (system CAs). Tests trust a self-signed receiver. */
export const DELIVERY_TLS = Symbol('DELIVERY_TLS');

/** The sender of every delivery: vetted addresses only (the URL rules' address check, plus TARGET_ALLOW_CIDRS). */
export const deliverySenderProviders: Provider[] = [
  { provide: DNS_RESOLVER, useValue: null },
  { provide: DELIVERY_TLS, useValue: null },
  {
    provide: SsrfSafeSender,
    inject: [APP_CONFIG, DNS_RESOLVER, DELIVERY_TLS],
    useFactory: (
      config: AppConfig,
      resolve: HostResolver | null,
      tls: SsrfSafeSenderOptions['tls'] | null,
    ): SsrfSafeSender => {
      // The worker logs TARGET_ALLOW_CIDRS at boot, with the other configuration warnings.
      const allow = parseCidrList(config.targets.allowCidrs.join(','));
      return new SsrfSafeSender({
        isAllowedAddress: (address) => isPublicAddress(address, allow),
        ...(resolve && { resolve }),
        ...(tls && { tls }),
      });
    },
  },
];
