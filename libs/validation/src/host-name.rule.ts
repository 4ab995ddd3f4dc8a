import {
  AWS_BLOCKED_SERVICE_LABELS,
  AWS_PARTITION_SUFFIXES,
  INTERNAL_NAME_SUFFIXES,
  METADATA_HOST_NAMES,
  type ReasonedName,
} from './url-blocklists.data';

/** The name rules a host name can break. */
export type NameRule = 'single_label' | 'internal_name' | 'metadata_service' | 'aws_endpoint';

interface NameIndex {
  readonly exact: ReadonlySet<string>;
  readonly subtree: ReadonlySet<string>;
  /** Labels of the longest listed name: no longer suffix can match. */
  readonly maxLabels: number;
}

function index(list: readonly ReasonedName[]): NameIndex {
  return {
    exact: new Set(list.map((n) => n.name)),
    subtree: new Set(list.filter((n) => n.subtree).map((n) => n.name)),
    maxLabels: Math.max(...list.map((n) => n.name.split('.').length)),
  };
}

const INTERNAL = index(INTERNAL_NAME_SUFFIXES);
const METADATA = index(METADATA_HOST_NAMES);
const AWS_PARTITIONS = index(AWS_PARTITION_SUFFIXES);
const AWS_SERVICES: ReadonlySet<string> = new Set(AWS_BLOCKED_SERVICE_LABELS.map((s) => s.label));

/**
 * Index of the first label of the longest listed suffix of `labels`, or -1. Suffixes are built from whole labels,
 * so `localhost.example.com` never matches `localhost` and `notsvc` never matches `svc`. Only suffixes as long as
 * the list's longest name are tried, so a name of many labels costs no more than a short one.
 */
function matchSuffix(labels: readonly string[], list: NameIndex): number {
  for (let i = Math.max(0, labels.length - list.maxLabels); i < labels.length; i++) {
    const suffix = i === 0 ? labels.join('.') : labels.slice(i).join('.');
    if (i === 0 ? list.exact.has(suffix) : list.subtree.has(suffix)) return i;
  }
  return -1;
}

/**
 * Lists the name rules that `host` breaks. `host` must already be ASCII (IDNA-mapped), lower case, without a
 * trailing dot, and not an IP literal.
 */
export function checkHostName(host: string): NameRule[] {
  const out: NameRule[] = [];
  const labels = host.split('.');
  if (labels.length === 1) out.push('single_label');
  if (matchSuffix(labels, INTERNAL) !== -1) out.push('internal_name');
  if (matchSuffix(labels, METADATA) !== -1) out.push('metadata_service');
  const partition = matchSuffix(labels, AWS_PARTITIONS);
  if (partition > 0) {
    // Left of an S3 label the labels are a bucket name (`eks.s3.amazonaws.com` is the bucket "eks"), and S3
    // answers for every name of that form: only labels right of it can name another service.
    const s3 = labels.slice(0, partition).findIndex((l) => l === 's3' || l.startsWith('s3-'));
    for (let i = s3 + 1; i < partition; i++) {
      if (AWS_SERVICES.has(labels[i])) {
        out.push('aws_endpoint');
        break;
      }
    }
  }
  return out;
}
