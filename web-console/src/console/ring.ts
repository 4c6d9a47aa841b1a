// The offer ring: a short, soft two-note tone repeated while an offer waits. The crisis page: three
// rising notes, more often, until someone acknowledges. Browsers only let a page play sound after
// a user gesture, so the console calls `unlockSound()` from clicks (sign-in, "Available", any
// first click).

let ctx: AudioContext | null = null;
let timer: number | undefined;

export function unlockSound(): void {
  try {
    ctx ??= new AudioContext();
    if (ctx.state === 'suspended') void ctx.resume();
  } catch {
    ctx = null;
  }
}

function beep(freq: number, at: number, length: number) {
  if (!ctx) return;
  const osc = ctx.createOscillator();
  const gain = ctx.createGain();
  osc.type = 'sine';
  osc.frequency.value = freq;
  gain.gain.setValueAtTime(0.0001, at);
  gain.gain.exponentialRampToValueAtTime(0.25, at + 0.02);
  gain.gain.exponentialRampToValueAtTime(0.0001, at + length);
  osc.connect(gain).connect(ctx.destination);
  osc.start(at);
  osc.stop(at + length + 0.02);
}

function chime() {
  if (!ctx || ctx.state !== 'running') return;
  const t = ctx.currentTime;
  beep(880, t, 0.18);
  beep(660, t + 0.22, 0.25);
}

/** Starts ringing (every 2.5 s) or stops it. */
export function ringing(on: boolean): void {
  if (on && timer === undefined) {
    unlockSound();
    chime();
    timer = window.setInterval(chime, 2_500);
  } else if (!on && timer !== undefined) {
    window.clearInterval(timer);
    timer = undefined;
  }
}

let pageTimer: number | undefined;

function alarm() {
  if (!ctx || ctx.state !== 'running') return;
  const t = ctx.currentTime;
  beep(660, t, 0.16);
  beep(880, t + 0.2, 0.16);
  beep(1100, t + 0.4, 0.3);
}

/** Starts the crisis page tone (every 1.6 s) or stops it. */
export function paging(on: boolean): void {
  if (on && pageTimer === undefined) {
    unlockSound();
    alarm();
    pageTimer = window.setInterval(alarm, 1_600);
  } else if (!on && pageTimer !== undefined) {
    window.clearInterval(pageTimer);
    pageTimer = undefined;
  }
}
