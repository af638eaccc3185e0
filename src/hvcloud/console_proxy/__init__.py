"""The console proxy: serves noVNC and bridges its WebSocket to a VM's VNC server, and hands out
Hyper-V ``.rdp`` files. It trusts only signed tokens (``tokens``) and reads the database the
management server writes; it never calls the server. See docs/console.md."""
