import { defineConfig } from "vite";

// `npm run dev` serves the page with hot reload; `npm run build` writes static files to dist/ for any web
// server. The page calls the API at VITE_AEROBOOK_URL (default http://127.0.0.1:50051) or at `?api=...`.
export default defineConfig({
  server: { host: "127.0.0.1", port: 5173 },
  preview: { host: "127.0.0.1", port: 4173 },
  build: { target: "es2022" },
});
