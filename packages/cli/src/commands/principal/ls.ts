import { Principals } from "@cacheroach/proto";
import { BaseCommand } from "../../lib/base-command.js";
import { EXIT_CODES_HELP } from "../../lib/errors.js";
import { table } from "../../lib/format.js";
import { type PrincipalJson, principalJson } from "../../lib/principal-json.js";

export default class PrincipalLs extends BaseCommand<typeof PrincipalLs> {
  static override summary = "List all principals (users and email domains).";

  static override description =
    `Lists every principal with its ID, version (needed to delete it), label (claims.name, else the ID) and, for domain principals, the email domain they stand for. --json adds the claims and verified email. Needs a super session.

${EXIT_CODES_HELP}`;

  static override examples = [
    { description: "List principals", command: "<%= config.bin %> <%= command.id %>" },
    { description: "With claims, as JSON", command: "<%= config.bin %> <%= command.id %> --json" },
  ];

  public async run(): Promise<PrincipalJson[]> {
    const rows: PrincipalJson[] = [];
    for await (const p of (await this.client(Principals)).list({})) rows.push(principalJson(p));
    if (rows.length > 0) {
      this.log(
        table(rows, [
          { header: "ID", get: (r) => r.id },
          { header: "Version", get: (r) => String(r.version), right: true },
          { header: "Label", get: (r) => r.label },
          { header: "Domain", get: (r) => r.emailDomain },
        ]),
      );
    }
    return rows;
  }
}
