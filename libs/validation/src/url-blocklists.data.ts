// Every list that decides whether a webhook target is refused lives here, as data, so that a reviewer can audit
// the reasons entry by entry and a change to the policy is a one-line diff. The rules that read these lists are in
// ip-address.rule.ts and host-name.rule.ts.

/** A CIDR block with the reason it is listed. */
export interface ReasonedCidr {
  readonly cidr: string;
  readonly reason: string;
}

/** A host name with the reason it is listed; `subtree` also covers every name below it. */
export interface ReasonedName {
  readonly name: string;
  readonly subtree: boolean;
  readonly reason: string;
}

/**
 * IPv4 blocks that are not globally reachable (IANA IPv4 Special-Purpose Address Registry, RFC 6890) or that
 * are multicast. A webhook must never be delivered into one of them.
 */
export const BLOCKED_IPV4_RANGES: readonly ReasonedCidr[] = [
  {
    cidr: '0.0.0.0/8',
    reason: '"This network", RFC 791 / RFC 1122; 0.0.0.0 reaches the local host on Linux',
  },
  { cidr: '10.0.0.0/8', reason: 'Private use, RFC 1918' },
  { cidr: '100.64.0.0/10', reason: 'Shared address space (carrier-grade NAT), RFC 6598' },
  { cidr: '127.0.0.0/8', reason: 'Loopback, RFC 1122' },
  { cidr: '169.254.0.0/16', reason: 'Link-local, RFC 3927; home of most cloud metadata services' },
  { cidr: '172.16.0.0/12', reason: 'Private use, RFC 1918' },
  { cidr: '192.0.0.0/24', reason: 'IETF protocol assignments, RFC 6890' },
  { cidr: '192.0.2.0/24', reason: 'Documentation (TEST-NET-1), RFC 5737' },
  { cidr: '192.88.99.0/24', reason: 'Deprecated 6to4 relay anycast, RFC 7526' },
  { cidr: '192.168.0.0/16', reason: 'Private use, RFC 1918' },
  { cidr: '198.18.0.0/15', reason: 'Benchmarking, RFC 2544' },
  { cidr: '198.51.100.0/24', reason: 'Documentation (TEST-NET-2), RFC 5737' },
  { cidr: '203.0.113.0/24', reason: 'Documentation (TEST-NET-3), RFC 5737' },
  { cidr: '224.0.0.0/4', reason: 'Multicast, RFC 5771' },
  { cidr: '240.0.0.0/4', reason: 'Reserved for future use, RFC 1112' },
  { cidr: '255.255.255.255/32', reason: 'Limited broadcast, RFC 919 / RFC 8190' },
];

/**
 * The only IPv6 space a webhook may target: global unicast (IANA IPv6 Address Space registry, RFC 4291).
 * Everything outside it (loopback, unspecified, link-local, unique-local, multicast, the IPv4-embedding
 * prefixes below ::/8 and 64:ff9b::/16) is refused.
 */
export const ALLOWED_IPV6_SPACE: ReasonedCidr = { cidr: '2000::/3', reason: 'Global unicast, RFC 4291' };

/** Blocks inside 2000::/3 that are still not ordinary global destinations. */
export const BLOCKED_IPV6_RANGES: readonly ReasonedCidr[] = [
  {
    cidr: '2001::/23',
    reason: 'IETF protocol assignments, RFC 2928 (Teredo, benchmarking 2001:2::/48, ORCHID, AMT, AS112)',
  },
  { cidr: '2001:db8::/32', reason: 'Documentation, RFC 3849' },
  { cidr: '2002::/16', reason: '6to4, RFC 3056: the packet is tunnelled to the embedded IPv4 address' },
  { cidr: '3fff::/20', reason: 'Documentation, RFC 9637' },
];

/** Where an IPv6 prefix hides an IPv4 address, so the IPv4 rules can be applied to it. */
export type Ipv4Embedding = 'last32' | 'sixToFour' | 'teredo';

/** IPv6 prefixes that carry an IPv4 address; each is refused as a literal whatever the address inside. */
export const IPV4_EMBEDDING_IPV6_RANGES: readonly (ReasonedCidr & { readonly embedding: Ipv4Embedding })[] = [
  { cidr: '::ffff:0:0/96', embedding: 'last32', reason: 'IPv4-mapped, RFC 4291 section 2.5.5.2' },
  { cidr: '::/96', embedding: 'last32', reason: 'IPv4-compatible (deprecated), RFC 4291 section 2.5.5.1' },
  { cidr: '::ffff:0:0:0/96', embedding: 'last32', reason: 'IPv4-translated (SIIT), RFC 7915' },
  { cidr: '64:ff9b::/96', embedding: 'last32', reason: 'NAT64 well-known prefix, RFC 6052' },
  { cidr: '64:ff9b:1::/48', embedding: 'last32', reason: 'NAT64 local-use prefix, RFC 8215' },
  { cidr: '2002::/16', embedding: 'sixToFour', reason: '6to4, RFC 3056 (IPv4 in bits 16-47)' },
  {
    cidr: '2001::/32',
    embedding: 'teredo',
    reason: 'Teredo, RFC 4380 (server in bits 32-63, client obfuscated)',
  },
];

/**
 * ISATAP interface identifiers (RFC 5214 section 6.1): `::0:5efe:a.b.c.d` and `::200:5efe:a.b.c.d` in the last 64
 * bits of any prefix. Unlike the ranges above they can sit in global space, where such an address with a public
 * IPv4 inside is an ordinary host; with a non-public one it could reach that host through an ISATAP router of
 * the sender's own network, so those are refused.
 */
export const ISATAP_INTERFACE_IDS: readonly { readonly high: number; readonly reason: string }[] = [
  { high: 0x0000, reason: 'ISATAP, locally administered IPv4 (RFC 5214)' },
  { high: 0x0200, reason: 'ISATAP, globally unique IPv4 (RFC 5214)' },
];
/** The second group of an ISATAP interface identifier. */
export const ISATAP_MARKER = 0x5efe;

/**
 * Addresses of cloud metadata and credential services. Most of them are link-local and refused anyway; they are
 * listed so the error names the real danger, and because some (Azure's wire server) sit in public space.
 */
export const METADATA_ADDRESSES: readonly { readonly address: string; readonly reason: string }[] = [
  {
    address: '169.254.169.254',
    reason:
      'Instance metadata service of AWS, GCP, Azure, Oracle, DigitalOcean, OpenStack, Hetzner and others',
  },
  { address: 'fd00:ec2::254', reason: 'AWS EC2 instance metadata service over IPv6 (Nitro)' },
  { address: '169.254.170.2', reason: 'AWS ECS task metadata and credentials endpoint' },
  { address: '169.254.170.23', reason: 'AWS EKS Pod Identity agent' },
  { address: 'fd00:ec2::23', reason: 'AWS EKS Pod Identity agent over IPv6' },
  {
    address: '168.63.129.16',
    reason: 'Azure wire server (public address, reachable only from inside Azure)',
  },
  { address: '100.100.100.200', reason: 'Alibaba Cloud ECS instance metadata service' },
  { address: '192.0.0.192', reason: 'Oracle Cloud Infrastructure legacy instance metadata service' },
  {
    address: 'fd00:c1::a9fe:a9fe',
    reason: 'Oracle Cloud Infrastructure instance metadata service over IPv6',
  },
  { address: 'fd20:ce::254', reason: 'GCP Compute Engine metadata server over IPv6' },
  { address: '169.254.0.23', reason: 'Tencent Cloud CVM instance metadata (metadata.tencentyun.com)' },
  { address: '169.254.42.42', reason: 'Scaleway instance metadata service' },
  { address: 'fd00:42::42', reason: 'Scaleway instance metadata service over IPv6' },
];

/** Host names of cloud metadata services (compared after IDNA mapping, lower case, trailing dot removed). */
export const METADATA_HOST_NAMES: readonly ReasonedName[] = [
  {
    name: 'instance-data',
    subtree: false,
    reason: 'AWS EC2 metadata short name (resolved via the VPC resolver)',
  },
  { name: 'instance-data.ec2.internal', subtree: false, reason: 'AWS EC2 metadata name in us-east-1' },
  { name: 'metadata', subtree: false, reason: 'GCP metadata short name (resolved via the VM search domain)' },
  { name: 'metadata.google.internal', subtree: true, reason: 'GCP Compute Engine metadata server' },
  { name: 'metadata.goog', subtree: true, reason: 'GCP metadata server alias under a public TLD' },
  { name: 'metadata.tencentyun.com', subtree: true, reason: 'Tencent Cloud CVM instance metadata' },
  { name: 'metadata.platformequinix.com', subtree: true, reason: 'Equinix Metal metadata service' },
  {
    name: 'metadata.packet.net',
    subtree: true,
    reason: 'Packet (now Equinix Metal) legacy metadata service',
  },
  // These three serve nothing public; they are in the common SSRF blocklists as names of the providers'
  // metadata services (which answer on 169.254.169.254, refused by address), so they are refused by name too.
  { name: 'metadata.azure.com', subtree: true, reason: 'Azure instance metadata name in SSRF blocklists' },
  {
    name: 'metadata.oraclecloud.com',
    subtree: true,
    reason: 'Oracle Cloud instance metadata name in SSRF blocklists',
  },
  {
    name: 'metadata.digitalocean.com',
    subtree: true,
    reason: 'DigitalOcean droplet metadata name in SSRF blocklists',
  },
  {
    name: 'api.metadata.cloud.ibm.com',
    subtree: true,
    reason: 'IBM Cloud VPC instance metadata service (resolves to 169.254.169.254 inside IBM Cloud)',
  },
  { name: 'rancher-metadata', subtree: false, reason: 'Rancher 1.x metadata service short name' },
  { name: 'rancher-metadata.rancher.internal', subtree: true, reason: 'Rancher 1.x metadata service' },
];

/**
 * Special-use and internal-only suffixes, matched on whole labels: the name itself or any name below it.
 * They never name a public receiver, and several resolve to the caller's own network.
 */
export const INTERNAL_NAME_SUFFIXES: readonly ReasonedName[] = [
  { name: 'localhost', subtree: true, reason: 'Loopback by definition, RFC 6761 section 6.3' },
  { name: 'local', subtree: true, reason: 'Multicast DNS, RFC 6762' },
  { name: 'internal', subtree: true, reason: 'Private-use TLD reserved by ICANN (2024); cloud-internal DNS' },
  { name: 'localdomain', subtree: true, reason: 'Conventional local domain of /etc/hosts' },
  { name: 'lan', subtree: true, reason: 'Common home-router domain, never delegated' },
  { name: 'home.arpa', subtree: true, reason: 'Residential networks, RFC 8375' },
  { name: 'home', subtree: true, reason: 'Home networks; ICANN name-collision list' },
  { name: 'intranet', subtree: true, reason: 'Intranets; ICANN name-collision list' },
  { name: 'corp', subtree: true, reason: 'Corporate networks; ICANN name-collision list' },
  { name: 'private', subtree: true, reason: 'Private networks, never delegated' },
  { name: 'mail', subtree: true, reason: 'Internal mail hosts; ICANN name-collision list' },
  { name: 'test', subtree: true, reason: 'Testing, RFC 6761 section 6.2' },
  { name: 'invalid', subtree: true, reason: 'Never resolves, RFC 6761 section 6.4' },
  { name: 'example', subtree: true, reason: 'Documentation, RFC 6761 section 6.5' },
  { name: 'onion', subtree: true, reason: 'Tor hidden services, RFC 7686' },
  { name: 'alt', subtree: true, reason: 'Non-DNS namespaces, RFC 9476' },
  { name: 'arpa', subtree: true, reason: 'Infrastructure domain (reverse DNS, home.arpa), RFC 3172' },
  { name: 'consul', subtree: true, reason: 'HashiCorp Consul service discovery domain' },
  { name: 'svc', subtree: true, reason: 'Kubernetes service names (<service>.<namespace>.svc)' },
  { name: 'cluster.local', subtree: true, reason: 'Kubernetes cluster domain' },
  { name: 'kubernetes.default', subtree: true, reason: 'Kubernetes API server from inside a pod' },
];

/**
 * DNS suffixes of the AWS partitions (public, China, GovCloud shares the public one, ISO, ISO-B, ISO-E, ISO-F,
 * European Sovereign Cloud) and their dual-stack forms. Only names under one of these are AWS endpoints.
 */
export const AWS_PARTITION_SUFFIXES: readonly ReasonedName[] = [
  { name: 'amazonaws.com', subtree: true, reason: 'AWS standard partition (and aws-us-gov)' },
  { name: 'amazonaws.com.cn', subtree: true, reason: 'AWS China partition' },
  { name: 'api.aws', subtree: true, reason: 'AWS dual-stack endpoints' },
  { name: 'api.amazonwebservices.com.cn', subtree: true, reason: 'AWS China dual-stack endpoints' },
  { name: 'c2s.ic.gov', subtree: true, reason: 'AWS ISO partition (aws-iso)' },
  { name: 'sc2s.sgov.gov', subtree: true, reason: 'AWS ISO-B partition (aws-iso-b)' },
  { name: 'cloud.adc-e.uk', subtree: true, reason: 'AWS ISO-E partition (aws-iso-e)' },
  { name: 'csp.hci.ic.gov', subtree: true, reason: 'AWS ISO-F partition (aws-iso-f)' },
  { name: 'amazonaws.eu', subtree: true, reason: 'AWS European Sovereign Cloud partition' },
  // The dual-stack DNS suffixes of the partitions above (`dualStackDnsSuffix` in the SDKs' partitions.json).
  { name: 'api.aws.ic.gov', subtree: true, reason: 'AWS ISO partition dual-stack endpoints' },
  { name: 'api.aws.scloud', subtree: true, reason: 'AWS ISO-B partition dual-stack endpoints' },
  { name: 'api.cloud-aws.adc-e.uk', subtree: true, reason: 'AWS ISO-E partition dual-stack endpoints' },
  { name: 'api.aws.hci.ic.gov', subtree: true, reason: 'AWS ISO-F partition dual-stack endpoints' },
  {
    name: 'api.amazonwebservices.eu',
    subtree: true,
    reason: 'AWS European Sovereign Cloud partition dual-stack endpoints',
  },
];

/**
 * Labels that mark an AWS identity or cluster-control endpoint when they appear anywhere left of a partition
 * suffix: `sts.us-east-1.amazonaws.com`, `fips.eks.us-east-1.amazonaws.com`,
 * `vpce-0a1b-x.sts.us-east-1.vpce.amazonaws.com`, `<id>.gr7.us-west-2.eks.amazonaws.com`. A webhook POST can
 * reach these with the sender's network position, and some accept actions in the query string.
 */
export const AWS_BLOCKED_SERVICE_LABELS: readonly { readonly label: string; readonly reason: string }[] = [
  { label: 'sts', reason: 'AWS Security Token Service (AssumeRole*, GetCallerIdentity)' },
  { label: 'sts-fips', reason: 'AWS STS FIPS endpoints' },
  { label: 'iam', reason: 'AWS Identity and Access Management' },
  { label: 'iam-fips', reason: 'AWS IAM FIPS endpoints' },
  { label: 'eks', reason: 'AWS EKS control plane, cluster API endpoints and OIDC issuers' },
  { label: 'eks-fips', reason: 'AWS EKS FIPS endpoints' },
  { label: 'eks-auth', reason: 'AWS EKS Pod Identity credential exchange (AssumeRoleForPodIdentity)' },
  { label: 'eks-auth-fips', reason: 'AWS EKS Pod Identity FIPS endpoints' },
];
