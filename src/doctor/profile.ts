import type { MeshProfile } from '../mesh/profile.js';
import { showVersion } from '../mesh/releases.js';
import { helmUpgrade, type ReleaseRef } from './chart.js';
import { couldNotCheck, ok, problem, type Finding } from './model.js';

// Check mesh-profile: the profile meshguard's guardrails follow is shown as `meshguard mesh` shows
// it (render.ts); here, what about it needs a person. Discovery's problems are of two kinds: an
// object the credentials could not read (src/mesh/cluster.ts: "… could not be read (…)"), which
// doctor could not check, and an object read but not understood (a version that is no release, a
// ConfigMap key that does not parse), where meshguard falls back to a default that may not be
// this mesh's.

const CHECK = 'mesh-profile';
const UNREAD = /could not be read/;
/** The setting a problem names ("… set mesh.istioVersion"). */
const SETTING = /set mesh\.(\w+)/;

export function checkProfile(profile: MeshProfile, configuration: string, release?: ReleaseRef): Finding[] {
  const findings: Finding[] = [
    ok(
      CHECK,
      undefined,
      `configuration from ${configuration}; Istio ${showVersion(profile.version)}, revisions ${[...profile.revisions.keys()].join(', ')}`,
    ),
  ];
  for (const p of profile.problems) {
    if (UNREAD.test(p))
      findings.push(
        couldNotCheck(
          CHECK,
          undefined,
          p,
          'meshguard reads these for the mesh profile; what it cannot read it takes from its configuration or the newest release',
        ),
      );
    else {
      const key = SETTING.exec(p)?.[1] ?? 'KEY';
      // Declared already: meshguard follows the configuration, and what discovery saw does not count.
      if (profile.origins[key] === 'configured') {
        findings.push(
          ok(
            CHECK,
            undefined,
            `${p.replace(SETTING, `mesh.${key} is declared in the configuration`)}, which meshguard follows`,
          ),
        );
        continue;
      }
      findings.push(
        problem(
          CHECK,
          undefined,
          p,
          "meshguard cannot tell this setting from Istio's objects and follows its configuration or the newest Istio release's default, which may not be this mesh's: its guardrails then act where the trap does not exist, or miss it",
          `declare it in the configuration's mesh: section; with the chart: ${helmUpgrade(release, `--set-string config.mesh.${key}=VALUE`)} (README: The Istio meshguard guards)`,
        ),
      );
    }
  }
  return findings;
}
