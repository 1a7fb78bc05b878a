import { CI_ACTOR_VARIABLES, IdentityError, describeIdentity, resolveIdentity } from '../../client/identity';

const noOsUser = (): undefined => undefined;

describe('resolveIdentity', () => {
  it('prefers --as over everything else', () => {
    const id = resolveIdentity({
      as: ' alice ',
      env: { CANARY_IDENTITY: 'bot', GITHUB_ACTOR: 'octocat' },
      osUser: () => 'root',
    });
    expect(id).toEqual({ name: 'alice', source: 'flag', from: '--as' });
  });

  it('uses CANARY_IDENTITY before CI variables', () => {
    const id = resolveIdentity({ env: { CANARY_IDENTITY: 'release-bot', GITHUB_ACTOR: 'octocat' } });
    expect(id).toEqual({ name: 'release-bot', source: 'env', from: 'CANARY_IDENTITY' });
  });

  it('reads the CI actor and records which CI it came from', () => {
    expect(resolveIdentity({ env: { GITHUB_ACTOR: 'octocat' }, osUser: noOsUser })).toEqual({
      name: 'octocat',
      source: 'ci',
      from: 'GITHUB_ACTOR',
      ci: 'github',
    });
    expect(resolveIdentity({ env: { GITLAB_USER_LOGIN: 'gl-user' }, osUser: noOsUser })).toMatchObject({
      name: 'gl-user',
      ci: 'gitlab',
    });
    expect(resolveIdentity({ env: { BUILDKITE_BUILD_CREATOR: 'Bea Kite' }, osUser: noOsUser })).toMatchObject(
      {
        name: 'Bea Kite',
        ci: 'buildkite',
      },
    );
    expect(resolveIdentity({ env: { CIRCLE_USERNAME: 'circle' }, osUser: noOsUser })).toMatchObject({
      ci: 'circleci',
    });
  });

  it('follows the documented order when several CI variables are set', () => {
    const env = { CIRCLE_USERNAME: 'c', GITLAB_USER_LOGIN: 'g', GITHUB_ACTOR: 'h' };
    expect(resolveIdentity({ env }).from).toBe('GITHUB_ACTOR');
    expect(CI_ACTOR_VARIABLES[0].variable).toBe('GITHUB_ACTOR');
  });

  it('ignores empty and blank variables', () => {
    const id = resolveIdentity({
      env: { CANARY_IDENTITY: '', GITHUB_ACTOR: ' ' },
      osUser: () => 'bob',
    });
    expect(id).toEqual({ name: 'bob', source: 'os', from: 'os.userInfo()' });
  });

  it('refuses an --as that is given but empty or blank, instead of acting as someone else', () => {
    const env = { CANARY_IDENTITY: 'release-bot', GITHUB_ACTOR: 'octocat' };
    for (const as of ['', '  ', '\t']) {
      expect(() => resolveIdentity({ as, env, osUser: () => 'bob' })).toThrow(IdentityError);
    }
    expect(() => resolveIdentity({ as: '', env })).toThrow(
      '--as is empty: give the name to act as (--as alice), or leave --as out to act as CANARY_IDENTITY, the CI actor or the OS user',
    );
    expect(() => resolveIdentity({ as: ' ', env })).toThrow(/^--as is blank: /);
    // Leaving --as out still falls back.
    expect(resolveIdentity({ env }).name).toBe('release-bot');
  });

  it('falls back to the OS user, then to "unknown"', () => {
    expect(resolveIdentity({ env: {} }).source).toBe('os');
    expect(resolveIdentity({ env: {} }).name).not.toBe('');
    expect(resolveIdentity({ env: {}, osUser: noOsUser })).toEqual({
      name: 'unknown',
      source: 'os',
      from: 'none',
    });
  });

  it('describes where the name came from', () => {
    expect(describeIdentity(resolveIdentity({ env: { GITHUB_ACTOR: 'octocat' } }))).toBe(
      'octocat (from GITHUB_ACTOR)',
    );
  });
});
