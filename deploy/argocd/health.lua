-- Argo CD health check for CanaryRollout (canary.temporal.io), issue 18. Install it in argocd-cm under
--   resource.customizations.health.canary.temporal.io_CanaryRollout
-- Healthy once the version the spec names is promoted; Suspended while a person is needed (an approval gate, a
-- pause); Degraded when it rolled back, did not start, or the spec is invalid; Progressing otherwise (including
-- while the controller has not yet caught up with the latest spec).
local hs = { status = "Progressing", message = "Waiting for the controller" }

local function condition(type)
  if obj.status ~= nil and obj.status.conditions ~= nil then
    for _, c in ipairs(obj.status.conditions) do
      if c.type == type then
        return c
      end
    end
  end
  return nil
end

if obj.status == nil then
  return hs
end
local invalid = condition("Invalid")
if invalid ~= nil and invalid.status == "True" then
  hs.status = "Degraded"
  hs.message = invalid.message
  return hs
end
local generation = obj.metadata.generation or 0
if obj.status.observedGeneration == nil or obj.status.observedGeneration < generation then
  return hs
end
local held = condition("NewVersionHeld")
if held ~= nil and held.status == "True" and held.reason == "Refused" then
  hs.status = "Degraded"
  hs.message = held.message
  return hs
end
hs.message = obj.status.message or ""
if obj.status.version ~= obj.spec.version then
  -- A new version is queued or superseding the running one.
  if held ~= nil and held.status == "True" then
    hs.message = held.message
  end
  return hs
end
local phase = obj.status.phase
if phase == "promoted" then
  hs.status = "Healthy"
elseif phase == "waiting_approval" or phase == "paused" then
  hs.status = "Suspended"
elseif phase == "rolled_back" or phase == "failed" or phase == "not_started" then
  hs.status = "Degraded"
else
  hs.status = "Progressing"
end
return hs
