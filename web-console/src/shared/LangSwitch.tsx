import { setLang, useLang } from './i18n';

/** One button that switches between 中文 and English; its label is in the language it offers. */
export function LangSwitch() {
  const lang = useLang();
  const next = lang === 'zh-CN' ? 'en' : 'zh-CN';
  return (
    <button
      type="button"
      class="lang-switch"
      lang={next}
      data-testid="lang-switch"
      aria-label={next === 'en' ? 'Switch to English' : '切换到中文'}
      onClick={() => setLang(next)}
    >
      {next === 'en' ? 'English' : '中文'}
    </button>
  );
}
