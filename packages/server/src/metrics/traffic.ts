import type { Socket } from "node:net";

/**
 * Bytes received and sent on client connections: closed connections' totals plus the live ones'
 * current counts, so the sum only grows (a connection's bytes move from live to closed unchanged).
 */
export class TrafficCounter {
  private readonly live = new Set<Socket>();
  private closedReceived = 0;
  private closedSent = 0;

  /** Counts one connection from now until it closes. */
  track(socket: Socket): void {
    this.live.add(socket);
    socket.once("close", () => {
      this.live.delete(socket);
      this.closedReceived += socket.bytesRead;
      this.closedSent += socket.bytesWritten;
    });
  }

  read(): { received: number; sent: number } {
    let received = this.closedReceived;
    let sent = this.closedSent;
    for (const s of this.live) {
      received += s.bytesRead;
      sent += s.bytesWritten;
    }
    return { received, sent };
  }
}
