import { defineConfig } from 'vite';
import preact from '@preact/preset-vite';

// The server (`hotline serve`) serves web-console/dist at `/`: `/` is the caller chat and
// `/console/` the staff console. Asset paths are relative so the build works from any root.
// `npm run dev` proxies the API and WebSockets to a running server (HOTLINE_URL).
const server = process.env.HOTLINE_URL ?? 'http://127.0.0.1:18080';

export default defineConfig({
  base: './',
  plugins: [preact()],
  build: {
    target: 'es2020',
    sourcemap: false,
    modulePreload: { polyfill: false },
    rollupOptions: {
      input: {
        caller: 'index.html',
        console: 'console/index.html',
      },
      output: {
        // Preact and src/shared are used by both pages: one cached chunk, named for what it is.
        // (The preload helper stays with the console: only it loads pages on demand.)
        manualChunks(id: string) {
          if (id.includes('/node_modules/preact/') || id.includes('/src/shared/')) return 'shared';
          return undefined;
        },
      },
    },
  },
  server: {
    proxy: {
      '/api': { target: server, changeOrigin: false },
      '/ws': { target: server.replace(/^http/, 'ws'), ws: true },
    },
  },
});
