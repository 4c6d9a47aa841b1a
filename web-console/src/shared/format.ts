import type { Lang } from './i18n';

/** A wait or a duration for people: "不到 1 分钟", "约 3 分钟", "less than a minute", "about 3 min". */
export function roughDuration(ms: number, lang: Lang): string {
  const min = Math.round(ms / 60_000);
  if (min < 1) return lang === 'zh-CN' ? '不到 1 分钟' : 'less than a minute';
  if (min < 60) return lang === 'zh-CN' ? `约 ${min} 分钟` : `about ${min} min`;
  const h = Math.floor(min / 60);
  const m = min % 60;
  return lang === 'zh-CN' ? `约 ${h} 小时 ${m} 分钟` : `about ${h} h ${m} min`;
}

/** A running timer: 0:07, 12:45, 1:02:03. */
export function clock(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${sec}` : `${m}:${sec}`;
}

/** Time of day of a server timestamp, in the viewer's zone. */
export function timeOfDay(at: number, lang: Lang): string {
  return new Date(at).toLocaleTimeString(lang, { hour: '2-digit', minute: '2-digit' });
}

export function dateTime(at: number, lang: Lang): string {
  return new Date(at).toLocaleString(lang, { dateStyle: 'short', timeStyle: 'short' });
}

/** `YYYY-MM-DD` of the user's own calendar day `daysAgo` days back (not UTC's: before 08:00 in
 *  Shanghai, UTC is still on yesterday). */
export function localDate(daysAgo = 0): string {
  const d = new Date();
  d.setDate(d.getDate() - daysAgo);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}
