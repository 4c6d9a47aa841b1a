// The page language: zh-CN by default, English on request; remembered in localStorage and
// shared by the caller page and the console (same origin). Each page brings its own strings,
// so the caller page never ships the console's.
import { useEffect, useState } from 'preact/hooks';

export type Lang = 'zh-CN' | 'en';
export const LANGS: Lang[] = ['zh-CN', 'en'];
const KEY = 'hotline.lang';

function load(): Lang {
  try {
    const saved = localStorage.getItem(KEY);
    if (saved === 'en' || saved === 'zh-CN') return saved;
  } catch {
    // Storage can be blocked (private mode, policy): fall back to the default.
  }
  return 'zh-CN';
}

let current: Lang = load();
const listeners = new Set<(l: Lang) => void>();
document.documentElement.lang = current;

export function getLang(): Lang {
  return current;
}

export function setLang(lang: Lang): void {
  current = lang;
  document.documentElement.lang = lang;
  try {
    localStorage.setItem(KEY, lang);
  } catch {
    // Not remembered, but the page still switches.
  }
  for (const l of listeners) l(lang);
}

/** The current language; re-renders the caller when it changes. */
export function useLang(): Lang {
  const [lang, set] = useState(current);
  useEffect(() => {
    listeners.add(set);
    set(current);
    return () => {
      listeners.delete(set);
    };
  }, []);
  return lang;
}

/** Picks the strings of the current language from a page's dictionaries. */
export function useStrings<D>(dicts: Record<Lang, D>): D {
  return dicts[useLang()];
}

/** A language code of the protocol (`zh`, `en`) for a UI language. */
export function protocolLanguage(lang: Lang): string {
  return lang === 'zh-CN' ? 'zh' : 'en';
}
