// The staff console shell: sign-in, the forced password change, navigation by role, the one
// staff socket, and notices. Pages live under hash routes: #/desk, #/wallboard, #/admin/…
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { AccountView, Me, QueueDefinition, Role } from '../proto/hotline';
import { ApiError, api } from '../shared/api';
import { useStrings } from '../shared/i18n';
import { LangSwitch } from '../shared/LangSwitch';
import { Admin } from './Admin';
import type { Colleague } from './ChatView';
import { Desk } from './Desk';
import { StaffStore, useStaff, type Notice } from './staff';
import { strings, type Strings } from './strings';
import { Wallboard } from './Wallboard';

type Page = 'desk' | 'wallboard' | 'admin' | 'password';

function pagesFor(role: Role): Page[] {
  switch (role) {
    case 'operator':
      return ['desk'];
    case 'crisis_lead':
      return ['desk', 'wallboard'];
    case 'supervisor':
      return ['wallboard', 'desk'];
    case 'admin':
      return ['admin', 'wallboard'];
  }
}

function useHash(): string {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const on = () => setHash(location.hash);
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  return hash;
}

export function App() {
  const t = useStrings(strings);
  const [me, setMe] = useState<Me | null | undefined>(undefined);

  useEffect(() => {
    api<Me>('GET', '/api/me').then(setMe, () => setMe(null));
  }, []);

  if (me === undefined)
    return (
      <p class="boot" role="status">
        {t.loading}
      </p>
    );
  if (me === null) return <Login t={t} onLogin={setMe} />;
  if (me.must_change_password) {
    return (
      <Frame t={t}>
        <PasswordForm t={t} forced onDone={() => setMe({ ...me, must_change_password: false })} />
      </Frame>
    );
  }
  return <Console t={t} me={me} onSignedOut={() => setMe(null)} />;
}

function Frame({
  t,
  children,
  nav,
}: {
  t: Strings;
  children: preact.ComponentChildren;
  nav?: preact.ComponentChildren;
}) {
  return (
    <div class="console">
      <header class="topbar">
        <h1>{t.appName}</h1>
        {nav}
        <LangSwitch />
      </header>
      <main id="main">{children}</main>
    </div>
  );
}

function Login({ t, onLogin }: { t: Strings; onLogin: (me: Me) => void }) {
  const [name, setName] = useState('');
  const [password, setPassword] = useState('');
  const [problem, setProblem] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  return (
    <Frame t={t}>
      <form
        class="card narrow"
        aria-labelledby="login-title"
        onSubmit={(e) => {
          e.preventDefault();
          setBusy(true);
          setProblem(null);
          api<Me>('POST', '/api/login', { name: name.trim(), password })
            .then(onLogin)
            .catch((err) => setProblem(t.loginFailed + (err instanceof ApiError ? err.message : String(err))))
            .finally(() => setBusy(false));
        }}
      >
        <h2 id="login-title">{t.loginTitle}</h2>
        <label class="field">
          <span>{t.accountName}</span>
          <input
            type="text"
            name="name"
            autoComplete="username"
            required
            value={name}
            onInput={(e) => setName(e.currentTarget.value)}
          />
        </label>
        <label class="field">
          <span>{t.password}</span>
          <input
            type="password"
            name="password"
            autoComplete="current-password"
            required
            value={password}
            onInput={(e) => setPassword(e.currentTarget.value)}
          />
        </label>
        {problem && (
          <p class="problem" role="alert">
            {problem}
          </p>
        )}
        <button type="submit" class="primary" disabled={busy}>
          {t.login}
        </button>
      </form>
    </Frame>
  );
}

function PasswordForm({ t, forced, onDone }: { t: Strings; forced?: boolean; onDone: () => void }) {
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [again, setAgain] = useState('');
  const [problem, setProblem] = useState<string | null>(null);
  const [done, setDone] = useState(false);
  return (
    <form
      class="card narrow"
      aria-labelledby="pw-title"
      data-testid="password-form"
      onSubmit={(e) => {
        e.preventDefault();
        setProblem(null);
        if ([...next].length < 10) return setProblem(t.passwordTooShort);
        if (next !== again) return setProblem(t.passwordsDiffer);
        api('POST', '/api/me/password', { current_password: current, new_password: next })
          .then(() => {
            setDone(true);
            setCurrent('');
            setNext('');
            setAgain('');
            onDone();
          })
          .catch((err) => setProblem(t.error + (err instanceof ApiError ? err.message : String(err))));
      }}
    >
      <h2 id="pw-title">{t.changePassword}</h2>
      {forced && <p class="note">{t.mustChange}</p>}
      <label class="field">
        <span>{t.currentPassword}</span>
        <input
          type="password"
          name="current"
          autoComplete="current-password"
          required
          value={current}
          onInput={(e) => setCurrent(e.currentTarget.value)}
        />
      </label>
      <label class="field">
        <span>{t.newPassword}</span>
        <input
          type="password"
          name="new"
          autoComplete="new-password"
          required
          minLength={10}
          value={next}
          onInput={(e) => setNext(e.currentTarget.value)}
        />
      </label>
      <label class="field">
        <span>{t.repeatPassword}</span>
        <input
          type="password"
          name="again"
          autoComplete="new-password"
          required
          value={again}
          onInput={(e) => setAgain(e.currentTarget.value)}
        />
      </label>
      {problem && (
        <p class="problem" role="alert">
          {problem}
        </p>
      )}
      {done && <p role="status">{t.passwordChanged}</p>}
      <button type="submit" class="primary">
        {t.changePassword}
      </button>
    </form>
  );
}

function Console({ t, me, onSignedOut }: { t: Strings; me: Me; onSignedOut: () => void }) {
  const store = useMemo(() => new StaffStore(), []);
  const state = useStaff(store);
  const hash = useHash();
  const [queues, setQueues] = useState<QueueDefinition[]>([]);
  const [colleagues, setColleagues] = useState<Colleague[] | null>(null);

  const loadQueues = () => {
    api<QueueDefinition[]>('GET', '/api/queues').then(setQueues, () => undefined);
  };
  useEffect(() => {
    store.onAuthLost = onSignedOut;
    store.start();
    loadQueues();
    // Only supervisors and admins may list accounts; operators transfer to a person by number.
    if (me.role === 'supervisor' || me.role === 'admin' || me.role === 'crisis_lead') {
      api<AccountView[]>('GET', '/api/admin/accounts').then(
        (list) =>
          setColleagues(
            list.filter((a) => !a.disabled && a.role !== 'admin').map((a) => ({ id: a.id, name: a.display_name })),
          ),
        () => setColleagues(null),
      );
    }
    return () => store.stop();
  }, [store]);

  const pages = pagesFor(me.role);
  const [, route = '', sub = ''] = hash.split('/');
  const page: Page = route === 'password' ? 'password' : pages.includes(route as Page) ? (route as Page) : pages[0];
  const names = new Map<number, string>([
    ...(colleagues ?? []).map((c) => [c.id, c.name] as [number, string]),
    ...(state.floor?.operators ?? []).map((o) => [o.id, o.name] as [number, string]),
  ]);
  // Offers ring on every page: show them wherever the person is.
  const offersElsewhere = page !== 'desk' && state.offers.length > 0 && pages.includes('desk');

  const signOut = () => {
    store.stop();
    api('POST', '/api/logout').finally(onSignedOut);
  };

  const nav = (
    <nav class="mainnav" aria-label={t.appName}>
      {[...pages, 'password' as Page].map((p) => (
        <a key={p} href={`#/${p}`} aria-current={page === p ? 'page' : undefined}>
          {t.nav[p]}
          {p === 'desk' && state.offers.length > 0 ? ` (${state.offers.length})` : ''}
        </a>
      ))}
    </nav>
  );

  return (
    <Frame t={t} nav={nav}>
      <div class="statusbar">
        <span class={`linkstate linkstate-${state.link}`} role="status" data-link={state.link}>
          {t.link[state.link]}
        </span>
        <span class="who">{t.signedInAs(me.display_name, t.roles[me.role])}</span>
        <button type="button" onClick={signOut}>
          {t.logout}
        </button>
      </div>
      {state.replaced && (
        <p class="problem" role="alert">
          {t.replaced}{' '}
          <button type="button" onClick={() => store.start()}>
            {t.reconnect}
          </button>
        </p>
      )}
      <Notices store={store} notices={state.notices} t={t} />
      {offersElsewhere && (
        <p class="offer-banner" role="alert">
          <a href="#/desk">
            {t.incoming} ({state.offers.length})
          </a>
        </p>
      )}
      {page === 'desk' && (
        <Desk store={store} state={state} t={t} me={me} queues={queues} colleagues={colleagues} names={names} />
      )}
      {page === 'wallboard' && (
        <Wallboard store={store} state={state} t={t} queues={queues} colleagues={colleagues} names={names} />
      )}
      {page === 'admin' && <Admin t={t} section={sub} onQueuesChanged={loadQueues} />}
      {page === 'password' && <PasswordForm t={t} onDone={() => undefined} />}
    </Frame>
  );
}

function noticeText(n: Notice, t: Strings): string {
  switch (n.kind) {
    case 'withdrawn':
      return `${t.contact(n.contact)}: ${t.withdrawn[n.reason] ?? n.reason}`;
    case 'released':
      return `${t.contact(n.contact)}: ${t.released[n.reason] ?? n.reason}`;
    case 'completed':
      return t.completed(n.contact);
    case 'shutdown':
      return t.shutdown;
    case 'error':
      return `${t.error}${n.message} (${n.code})`;
  }
}

function Notices({ store, notices, t }: { store: StaffStore; notices: Notice[]; t: Strings }) {
  const timers = useRef(new Map<number, number>());
  useEffect(() => {
    for (const n of notices) {
      if (timers.current.has(n.id)) continue;
      timers.current.set(
        n.id,
        window.setTimeout(() => store.dismiss(n.id), n.kind === 'error' ? 12_000 : 8_000),
      );
    }
  }, [notices]);
  return (
    <div class="notices" aria-live="polite">
      {notices.map((n) => (
        <p key={n.id} class={`notice ${n.kind === 'error' ? 'problem' : 'note'}`}>
          {noticeText(n, t)}{' '}
          <button type="button" class="link" onClick={() => store.dismiss(n.id)} aria-label={t.close}>
            ×
          </button>
        </p>
      ))}
    </div>
  );
}
