import * as dgram from 'node:dgram';
import * as packet from 'dns-packet';

/** What {@link NameServer} answers for a name: its addresses by family, an error code, or nothing at all. */
export type Answer = { A?: string[]; AAAA?: string[] } | 'NXDOMAIN' | 'SERVFAIL' | 'silent';

/**
 * A name server on a loopback UDP port that answers A and AAAA queries from a table (any other name: NXDOMAIN) and
 * records what it was asked, as `<type> <name>`.
 */
export class NameServer {
  readonly asked: string[] = [];
  private readonly socket = dgram.createSocket('udp4');

  constructor(private readonly zone: Record<string, Answer>) {
    this.socket.on('message', (message, peer) => {
      const query = packet.decode(message);
      const question = query.questions?.[0];
      if (!question) return;
      this.asked.push(`${question.type} ${question.name}`);
      const answer = this.zone[question.name] ?? 'NXDOMAIN';
      if (answer === 'silent') return;
      const rcode = answer === 'NXDOMAIN' ? 3 : answer === 'SERVFAIL' ? 2 : 0;
      const records =
        typeof answer === 'object' && (question.type === 'A' || question.type === 'AAAA')
          ? (answer[question.type] ?? []).map((data) => ({
              type: question.type as 'A',
              name: question.name,
              ttl: 5,
              data,
            }))
          : [];
      const reply = packet.encode({
        id: query.id,
        type: 'response',
        flags: packet.RECURSION_DESIRED | packet.RECURSION_AVAILABLE | rcode,
        questions: query.questions,
        answers: records,
      });
      this.socket.send(reply, peer.port, peer.address);
    });
  }

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.socket.bind(0, '127.0.0.1', resolve));
    return `127.0.0.1:${this.socket.address().port}`;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.socket.close(() => resolve()));
  }
}
